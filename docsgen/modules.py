"""The code module by module, and its layers: written from ``gateway/`` and setup.cfg.

Every package and module of ``gateway/`` with the first sentence of its
docstring (each module opens with one: a module without is
:class:`~docsgen.Undocumented`), as a tree in the folders' order; then the
import layers, top to bottom, as ``[importlinter:contract:layers]`` declares
them (the contract ``make lint`` checks).
"""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

from . import GATEWAY, Undocumented

SETUP_CFG = GATEWAY.parent / "setup.cfg"


def summary(path: Path) -> str:
    """The first sentence of a module's docstring, on one line."""
    docstring = ast.get_docstring(ast.parse(path.read_text(), str(path)))
    if not docstring:
        raise Undocumented(f"{path.parent.name}/{path.name} has no docstring header: "
                           "say in a sentence what it holds")
    first = " ".join(docstring.split("\n\n", 1)[0].split())
    return first


def tree(root: Path = GATEWAY) -> list[tuple[str, str]]:
    """(indented name, summary) for the package and everything in it."""
    rows = []

    def walk(folder: Path, depth: int) -> None:
        init = folder / "__init__.py"
        rows.append(("  " * depth + folder.name + "/", summary(init) if init.exists() else ""))
        for path in sorted(folder.glob("*.py")):
            if path.name != "__init__.py":
                rows.append(("  " * (depth + 1) + path.name, summary(path)))
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
            walk(sub, depth + 1)
    walk(root, 0)
    return rows


def layers(setup_cfg: Path = SETUP_CFG) -> list[str]:
    """The layers contract's lines, top to bottom (``a | b``: independent of each other)."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    declared = parser["importlinter:contract:layers"]["layers"]
    return [line.strip() for line in declared.splitlines() if line.strip()]


def render() -> str:
    lines = ["# The code, module by module", "",
             "Written at every build from `gateway/` (each module's docstring header) and "
             "setup.cfg (the layers contract), so it lists what is there.", "",
             "## Layers", "",
             "A module imports only from layers below its own (`lint-imports` in `make "
             "lint` checks it, type-only imports included); modules on one line are "
             "independent of each other. Top to bottom:", ""]
    lines += [f"{i}. `{layer}`" for i, layer in enumerate(layers(), 1)]
    lines += ["", "## Modules", "", "```text"]
    rows = tree()
    width = max(len(name) for name, _ in rows) + 2
    lines += [f"{name.ljust(width)}{text.replace('``', '`')}".rstrip() for name, text in rows]
    lines += ["```"]
    return "\n".join(lines) + "\n"
