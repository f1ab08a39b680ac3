"""AWS Lambda entry point: ``lambda_handler.handler``, the same app as ``wsgi.py``.

apig-wsgi turns API Gateway REST API (v1), HTTP API (v2) and ALB events into
WSGI requests and the answers back (repeated headers and query keys, base64
bodies both ways). :func:`lambda_environ` settles what it leaves to the app:

- the client address: from the request context (v1: ``identity.sourceIp``;
  v2: ``http.sourceIp``), and for ALB the address the balancer appended last
  to ``X-Forwarded-For``; never a value the client wrote;
- the stage prefix (``/prod`` when the stage is not ``$default``) becomes
  ``SCRIPT_NAME``, so routes match without it and links (``/docs``) keep it;
- v2's raw path and query are kept byte for byte (``RAW_URI``), as gunicorn does.

The app is built once per container, at import: that is the cold start.
Bodies are buffered whole both ways (Lambda has no streaming), and
``storage: memory://`` is per container: point ``storage`` at Redis to share
quotas, caches and breakers.
"""

from __future__ import annotations

from apig_wsgi import make_lambda_handler

from gateway.app import load_app


def lambda_environ(app):
    """WSGI middleware: client address, stage prefix and raw target from the event."""
    def middleware(environ, start_response):
        context = environ.get("apig_wsgi.request_context") or {}
        event = environ.get("apig_wsgi.full_event") or {}
        if "elb" in context:
            hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
            environ["REMOTE_ADDR"] = hops[-1] if hops[-1] else environ["REMOTE_ADDR"]
        elif "identity" in context:
            environ["REMOTE_ADDR"] = context["identity"].get("sourceIp") or "127.0.0.1"
        # apig-wsgi turns the client's own X-Forwarded-For into REMOTE_ADDR (v1); the
        # gateway decides what to believe (trusted_proxies), so it sees no such header
        environ.pop("HTTP_X_FORWARDED_FOR", None)
        stage = context.get("stage")
        prefix = f"/{stage}" if stage and stage != "$default" else ""
        path = environ["PATH_INFO"]
        if event.get("version") == "2.0":
            raw_path = event.get("rawPath", path)
            if prefix and (path == prefix or path.startswith(prefix + "/")):
                environ["SCRIPT_NAME"], environ["PATH_INFO"] = prefix, path[len(prefix):] or "/"
                raw_path = raw_path[len(prefix):] or "/"
            query = event.get("rawQueryString")
            environ["RAW_URI"] = raw_path + (f"?{query}" if query else "")
        elif prefix and str(context.get("path", "")).startswith(prefix + "/"):
            environ["SCRIPT_NAME"] = prefix  # v1: the event's path is already without it
        return app(environ, start_response)
    return middleware


app = load_app()
handler = make_lambda_handler(lambda_environ(app), binary_support=True)
