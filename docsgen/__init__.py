"""The documentation site's generated pages (mkdocs-gen-files runs docsgen/pages.py).

Each module here writes one reference page from the code itself, so the
site cannot drift from what the gateway does: the configuration from the
JSON Schema of the config model, the metrics from prometheus_client's
registry, the error codes from the ``GatewayError`` raises in ``gateway/``,
the headers from the routing module's sets, the request chain from
:data:`gateway.policies.ORDER`, the module tree and its layers from ``gateway/``
and setup.cfg. A module raises :class:`Undocumented` when the
code has something its page would have to leave out (an error code with no
advice, a header with no entry): ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

#: The package whose code the references describe.
GATEWAY = Path(__file__).resolve().parent.parent / "gateway"


class Undocumented(Exception):
    """The code has something the reference has no words for yet."""


def source_nodes(root: Path = GATEWAY) -> Iterator[tuple[str, ast.AST]]:
    """Every AST node of every module under ``root``, with the module's path."""
    for path in sorted(root.rglob("*.py")):
        module = path.relative_to(root.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            yield module, node
