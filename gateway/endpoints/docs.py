"""``/openapi.json`` and ``/docs``: the merged OpenAPI document and Swagger UI over it.

The document is built at start-up (gateway/openapi) and served as is. The
page loads Swagger UI 5 from the files of the installed ``swagger-ui-py``
package, served under ``/docs/static``: no CDN, so it works offline and
behind a firewall. Both are public, as a service's own docs would be.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from flask import Blueprint, Response, jsonify, url_for

from ..extension import gateway_of

_spec = importlib.util.find_spec("swagger_ui")  # located, not imported: only its files are used
STATIC = Path(next(iter(_spec.submodule_search_locations or ()))) / "static" if _spec else None

bp = Blueprint("gateway_docs", __name__, static_folder=str(STATIC) if STATIC else None,
               static_url_path="/docs/static")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "{spec}", dom_id: "#swagger-ui", deepLinking: true,
                                 docExpansion: "list", tryItOutEnabled: false}});
  </script>
</body>
</html>
"""


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(gateway_of().openapi)


@bp.get("/docs")
def docs() -> Response:
    document = gateway_of().openapi
    static = "gateway_docs.static"
    page = PAGE.format(title=document["info"]["title"], spec=url_for("gateway_docs.openapi"),
                       css=url_for(static, filename="swagger-ui.css"),
                       icon=url_for(static, filename="favicon-32x32.png"),
                       bundle=url_for(static, filename="swagger-ui-bundle.js"))
    return Response(page, mimetype="text/html")
