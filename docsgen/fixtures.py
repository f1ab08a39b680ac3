"""The test fixtures reference: every fixture of the ``gateway`` pytest plugin, with its
docstring, and the public methods of the fakes and the clock, read from
gateway/testing (the plugin is public API: what is here is what a user may rely on)."""

from __future__ import annotations

import inspect

from . import Undocumented


def render() -> str:
    from gateway.testing import fakes, plugin
    from gateway.testing.clock import MovedClock

    lines = ["# Test fixtures (`gateway.testing`)", "",
             "The `gateway` pytest plugin, installed with "
             "`pip install 'flask-api-gateway[testing]'` (the `pytest11` entry point: no "
             "conftest needed). The guide: [Testing your gateway](../guides/testing.md).", "",
             "## Fixtures", "",
             "| fixture | what it gives |", "|---|---|"]
    for name, value in sorted(vars(plugin).items()):
        marker = getattr(value, "_fixture_function_marker", None) or getattr(
            value, "_pytestfixturefunction", None)
        if marker is None or name.startswith("_"):
            continue
        lines.append(f"| `{name}` | {_doc(value, name)} |")
    lines += ["", "`@pytest.mark.gateway(...)` asks for more than the defaults: "
              f"{', '.join(f'`{o}`' for o in plugin.MARKER_OPTIONS)}.", ""]
    for title, cls in (("A fake upstream (`upstreams[name]`, `.targets[i]`)",
                        fakes.FakeUpstream),
                       ("A service's fakes (`upstreams[name]`)", fakes.FakeService),
                       ("A received request (`.requests[i]`)", fakes.FakeRequest),
                       ("The clock (`gateway_clock`)", MovedClock)):
        lines += [f"## {title}", ""]
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or not (inspect.isfunction(member)
                                           or isinstance(member, property)):
                continue
            if isinstance(member, property):
                function, signature = member.fget, ""
            else:
                function = member
                signature = str(inspect.signature(member)).replace("(self, ", "(") \
                    .replace("(self)", "()")
            lines.append(f"- `{name}{signature}`: {_doc(function, name)}")
        lines.append("")
    return "\n".join(lines)


def _doc(value, name: str) -> str:
    function = getattr(value, "__wrapped__", value)
    text = inspect.getdoc(function) or inspect.getdoc(value)
    if not text:
        raise Undocumented(f"gateway.testing: {name} has no docstring")
    return " ".join(text.split()).replace("|", "\\|")
