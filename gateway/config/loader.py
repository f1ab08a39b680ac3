"""Reading the config: the file, ``${VAR}`` expansion, then the one validation path.

:func:`parse_config` is the only way a config becomes a :class:`GatewayConfig`:
``create_app``, ``gateway check``, the gunicorn master and ``flask run`` all
go through it, so whatever passes ``gateway check`` also starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from .checks import cross_check
from .model import GatewayConfig
from .problems import ConfigError, describe

#: Where the config file is looked for when ``GATEWAY_CONFIG`` is not set.
DEFAULT_CONFIG_PATH = "./gateway.yaml"

#: A check that needs more than the config (imports, Flask): ``f(config) -> problems``.
Check = Callable[[GatewayConfig], list[str]]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def config_path(path: str | None = None) -> tuple[str, str]:
    """The file to read, and what named it (for messages)."""
    if path:
        return path, "given"
    if os.environ.get("GATEWAY_CONFIG"):
        return os.environ["GATEWAY_CONFIG"], "GATEWAY_CONFIG"
    return DEFAULT_CONFIG_PATH, "default"


def load_config(path: str | None = None, named_by: str | None = None,
                checks: Sequence[Check] = ()) -> GatewayConfig:
    """Read, expand and validate the YAML file at ``path``.

    :param path: the file; defaults to ``$GATEWAY_CONFIG``, then ``./gateway.yaml``.
    :param named_by: how the user named the file (``--config``), for messages.
    :param checks: more checks, run with the cross-section ones (see :func:`parse_config`).
    :raises ConfigError: the file cannot be read, is not YAML, or is invalid.
    """
    path, origin = config_path(path)
    origin = named_by or origin
    try:
        with open(path, encoding="utf-8") as fh:
            raw, duplicates = read_yaml(fh)
    except OSError as exc:
        raise ConfigError([_unreadable(path, origin, exc)], path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path!r} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                           f"offset {exc.start}): save the file as UTF-8"], path) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], path) from None
    if duplicates:
        raise ConfigError(duplicates, path)
    return parse_config(raw if raw is not None else {}, source=path, checks=checks)


def read_yaml(stream: Any) -> tuple[Any, list[str]]:
    """The YAML document, and a problem for every key given twice in one mapping.

    PyYAML keeps the last of two equal keys: a copy-pasted service would
    vanish without a word, so each one is named with its path and both lines.
    """
    loader = yaml.SafeLoader(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        return loader.construct_document(node), duplicate_keys(node, "")
    finally:
        loader.dispose()


def duplicate_keys(node: yaml.Node, path: str) -> list[str]:
    """``path.key: given twice (lines A and B)`` for each repeated key, at every depth."""
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[Any, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            where = f"{path}.{name}" if path else str(name)
            if name is not None and name != "<<":
                line = key.start_mark.line + 1
                if name in first_line:
                    problems.append(f"{where}: the key {name!r} is given twice (lines "
                                    f"{first_line[name]} and {line}); YAML keeps only the last, "
                                    "so merge the two or rename one")
                else:
                    first_line[name] = line
            problems += duplicate_keys(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += duplicate_keys(item, f"{path}[{index}]")
    return problems


def _unreadable(path: str, origin: str, exc: OSError) -> str:
    fix = {"--config": "check the path given to --config",
           "GATEWAY_CONFIG": "set GATEWAY_CONFIG to your gateway.yaml (see examples/gateway.yaml)",
           "default": "create it (see examples/gateway.yaml) or set GATEWAY_CONFIG to "
                      "your gateway.yaml",
           }.get(origin, "check the path (see examples/gateway.yaml)")
    if isinstance(exc, FileNotFoundError):
        return f"file {path!r} does not exist: {fix}"
    if isinstance(exc, IsADirectoryError):
        return f"{path!r} is a directory, not a YAML file: name the gateway.yaml inside it"
    if isinstance(exc, PermissionError):
        return f"{path!r} cannot be read (permission denied): make it readable by this user"
    return f"{path!r} cannot be read ({exc.strerror or exc}): {fix}"


def parse_config(raw: Any, source: str = "<mapping>", checks: Sequence[Check] = ()) -> GatewayConfig:
    """Validate an already-loaded mapping (a parsed YAML file, or a test's dict).

    Problems within sections are reported all at once; references between
    sections are checked once every section is valid, together with
    ``checks`` (``create_app`` and ``gateway check`` pass the blueprint
    imports, gateway/routing/blueprints.py), so all are reported at once too.
    """
    problems: list[str] = []
    raw = expand_env(raw, "", problems)
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        problems += [describe(error, GatewayConfig) for error in exc.errors()]
        raise ConfigError(problems, source) from None
    config._source = source  # checks resolve files named relative to the config file
    problems += cross_check(config)
    for check in checks:
        problems += check(config)
    if problems:
        raise ConfigError(problems, source)
    return config


def expand_env(value: Any, path: str, problems: list[str]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string, recursively."""
    if isinstance(value, str):
        def substitute(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append(f"{path or '<top>'}: environment variable {name} is not set "
                            f"(export it, or write ${{{name}:-default}})")
            return match.group(0)
        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, f"{path}.{k}" if path else str(k), problems)
                for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value
