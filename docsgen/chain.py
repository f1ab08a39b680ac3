"""The request chain: a diagram and a table drawn from :data:`gateway.policies.ORDER`.

The diagram is an SVG written here (no diagram library or script on the
page, so it renders offline); the steps are ORDER's, in its order, and the
example config's routes show which steps each one has (``steps_for``, what
``gateway check`` prints). A step in ORDER without an entry in :data:`STEPS`
is :class:`~docsgen.Undocumented`.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from . import Undocumented

ROOT = Path(__file__).resolve().parent.parent

#: step: (what it does, what switches it on)
STEPS = {
    "request-id": ("keeps a well-formed X-Request-ID or makes one", "always"),
    "path-check": ("refuses paths with `.`, `..` or empty segments (400 bad_path)", "always"),
    "cors": ("answers preflights; refuses other origins", "cors"),
    "ip-rules": ("refuses client addresses (403 ip_forbidden)", "allow_ips, deny_ips"),
    "body-size": ("refuses larger bodies (413 body_too_large)", "max_body_bytes"),
    "authentication": ("API key or bearer token: who is calling (401, 403)", "auth"),
    "quota": ("counts the call for the consumer (429 rate_limited)", "rate_limit"),
    "validate": ("checks the request against the OpenAPI document (400)", "validate"),
    "canary": ("picks the primary or the canary upstream", "canary"),
    "cache": ("answers from the cache (X-Cache-Status: HIT)", "cache"),
    "transform": ("reshapes the request and the answer", "transform"),
    "upstream": ("calls the upstream: pools, retries, breaker, failover", "upstream"),
    "view": ("a hand-written blueprint's own view", "blueprints"),
}

BOX_W, BOX_H, GAP, LEFT = 560, 40, 18, 10


def steps() -> tuple[str, ...]:
    from gateway.policies import ORDER

    missing = [step for step in ORDER if step not in STEPS]
    if missing:
        raise Undocumented(f"chain steps without an entry in docsgen/chain.py: {missing}")
    return ORDER


def svg() -> str:
    """The chain as a column of boxes, top to bottom, in ORDER."""
    order = steps()
    height = len(order) * (BOX_H + GAP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {BOX_W + 2 * LEFT} '
             f'{height}" width="{BOX_W + 2 * LEFT}" font-family="sans-serif" font-size="13" '
             f'role="img" aria-label="The request chain: {", ".join(order)}">',
             '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="4" refY="4" '
             'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>']
    for index, step in enumerate(order):
        what, switch = STEPS[step]
        y = index * (BOX_H + GAP)
        parts.append(f'<rect x="{LEFT}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
                     f'fill="#eef3fb" stroke="#3f6fb5"/>')
        parts.append(f'<text x="{LEFT + 12}" y="{y + 17}" font-weight="bold">{escape(step)}'
                     f'</text>')
        parts.append(f'<text x="{LEFT + 12}" y="{y + 33}" fill="#333">'
                     f'{escape(what.replace("`", ""))}</text>')
        parts.append(f'<text x="{LEFT + BOX_W - 12}" y="{y + 17}" text-anchor="end" '
                     f'fill="#666">{escape(switch)}</text>')
        if index < len(order) - 1:
            x = LEFT + BOX_W // 2
            parts.append(f'<line x1="{x}" y1="{y + BOX_H}" x2="{x}" y2="{y + BOX_H + GAP - 4}" '
                         f'stroke="#555" marker-end="url(#arrow)"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def example_chains() -> list[tuple[str, tuple[str, ...]]]:
    """Each route of examples/gateway.yaml with the steps its chain has."""
    import sys

    from gateway.cli import route_chains
    from gateway.config import load_config
    from gateway.routing import CONFIG_CHECKS

    # the example's blueprints are imported from the checkout, as `gateway check` does
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    config = load_config(str(ROOT / "examples" / "gateway.yaml"), checks=CONFIG_CHECKS)
    return route_chains(config)


def render() -> str:
    lines = ["# The request chain", "",
             "Every route (a service, a hand-written blueprint, an aggregate) runs the steps "
             "its config switches on, in this order; a step that is off is not in its chain "
             "at all, so it costs nothing. The first step that answers ends the chain (a 401, "
             "a cache hit); on the way back every step's `after` runs in reverse, on every "
             "answer of the route, errors included. Drawn from `gateway.policies.ORDER` when "
             "the site is built.", "", svg(), "",
             "| step | what it does | switched on by |", "|---|---|---|"]
    lines += [f"| `{step}` | {STEPS[step][0]} | `{STEPS[step][1]}` |" for step in steps()]
    lines += ["", "## The example's routes", "",
              "`gateway check` prints each route's chain; for `examples/gateway.yaml` "
              "(what `make run` serves):", "", "| route | its chain |", "|---|---|"]
    lines += [f"| `{route}` | {' → '.join(chain)} |" for route, chain in example_chains()]
    return "\n".join(lines) + "\n"
