"""Writes the generated reference pages; mkdocs-gen-files runs it at every build.

The pages exist only in the build (``site/``), never in ``docs/``: nothing
generated is committed, so nothing generated can go stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # mkdocs-gen-files runs this file by path
    sys.path.insert(0, str(ROOT))

from docsgen import (  # noqa: E402
    chain,
    config_reference,
    error_codes,
    fixtures,
    headers,
    metrics,
    modules,
)
from gateway.cli import schema_document  # noqa: E402

PAGES = {
    "reference/configuration.md": lambda: config_reference.render(schema_document()),
    "reference/errors.md": error_codes.render,
    "reference/metrics.md": metrics.render,
    "reference/headers.md": headers.render,
    "reference/request-chain.md": chain.render,
    "reference/request-chain.svg": chain.svg,
    "reference/modules.md": modules.render,
    "reference/test-fixtures.md": fixtures.render,
    "reference/gateway.schema.json": lambda: json.dumps(schema_document(), indent=2),
}

for page, write in PAGES.items():
    with mkdocs_gen_files.open(page, "w") as out:
        out.write(write())
