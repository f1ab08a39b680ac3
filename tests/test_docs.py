"""The documentation site: it builds strictly, its references cover the code, its examples run.

The site is built once for the module with ``mkdocs build --strict`` (what
``make docs`` runs): a broken link, a page missing from the nav, or code that
a reference has no words for (docsgen's ``Undocumented``) fails it. The
checks below read the built HTML, as a reader would get it.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import click
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from docsgen import error_codes, headers, metrics
from docsgen.config_reference import schema_keys
from gateway.cli import main as cli
from gateway.cli import schema_document
from gateway.config import load_config
from gateway.policies import ORDER
from tests.browser import Browser
from tests.conftest import ROOT

MKDOCS = Path(sys.executable).parent / "mkdocs"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    result = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def text_of(page: Path) -> str:
    """The page's text with tags removed and entities decoded (what a reader sees)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def test_every_error_code_the_gateway_raises_is_in_the_errors_reference(site):
    page = text_of(site / "reference" / "errors.html")
    codes = error_codes.codes_in_source()
    assert {"rate_limited", "bad_gateway", "invalid_token", "unknown_operation"} <= set(codes)
    for code, entry in codes.items():
        row = re.search(rf"^{code}\n(.+)$", page, re.M)
        assert row, f"{code} is not in the errors reference"
        for status in entry.statuses:
            if isinstance(status, int):
                assert str(status) in row.group(1), (code, status)


def test_the_error_scan_finds_codes_however_they_are_raised(tmp_path):
    """A code raised through any of the error classes is seen, so none slips by the page."""
    (tmp_path / "a.py").write_text(
        'raise GatewayError(418, "teapot", "x")\n'
        'raise self.UpstreamError(504, "slow", "y", "timeout", "")\n'
        'return error_response(429, "busy", "z")\n'
        'raise CallFailed(502, "odd", "w")\n')
    found = error_codes.codes_in_source(tmp_path)
    assert {code: (entry.statuses, entry.answered) for code, entry in found.items()
            if code in ("teapot", "slow", "busy", "odd")} == {
        "teapot": ({418}, True), "slow": ({504}, True), "busy": ({429}, True),
        "odd": ({502}, False)}


def test_every_metric_served_on_metrics_is_in_the_metrics_reference(site, make_gateway, upstream):
    page = text_of(site / "reference" / "metrics.html")
    gw = make_gateway({"services": {"users": upstream.url}})
    requests.get(f"{gw.url}/users/1")
    served = {(family.name, family.type) for family in text_string_to_metric_families(
        requests.get(f"{gw.url}/metrics").text) if family.name.startswith("gateway_")}
    assert len(served) >= 15
    for name, kind in served:
        if kind == "gauge" and name.endswith("_created"):
            continue  # a counter's creation time, outside gunicorn only (not multiprocess)
        sample = name + {"counter": "_total", "histogram": "_bucket"}.get(kind, "")
        assert re.search(rf"^{sample}", page, re.M), f"{name} is not in the metrics reference"
    for metric in metrics.gateway_metrics():  # those /metrics names only once they have samples
        assert metric._name in page


def test_every_config_key_has_a_description_and_a_place_in_the_reference(site):
    page = text_of(site / "reference" / "configuration.html")
    keys = schema_keys(schema_document())  # raises Undocumented on a key without description
    assert len(keys) > 150
    dotted = {".".join(key.path) for key in keys}
    assert {"services.<name>.upstream", "services.<name>.canary.weight", "quota.mode",
            "aggregates[].calls.<name>.select", "services.<name>.validate.status"} <= dotted
    for name in dotted:
        assert name in page, f"{name} is not in the configuration reference"


def test_a_key_without_a_description_fails_the_build():
    from docsgen import Undocumented
    schema = {"properties": {"storage": {"type": "string", "description": "where"},
                             "mystery": {"type": "integer"}}}
    with pytest.raises(Undocumented, match="mystery"):
        schema_keys(schema)


def test_every_command_and_option_is_in_the_cli_reference(site):
    page = text_of(site / "reference" / "cli.html")
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        assert f"gateway {name}" in page, name
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("-"):
                    assert option in page, (name, option)


def test_every_header_the_code_names_is_in_the_headers_reference(site):
    page = text_of(site / "reference" / "headers.html").lower()
    named = headers.headers_in_source()
    assert {"x-request-id", "x-api-key", "ratelimit-remaining", "x-canary"} <= named
    for name in named:
        assert name in page, f"{name} is not in the headers reference"


def test_every_module_and_layer_is_in_the_modules_reference(site, tmp_path):
    from docsgen import Undocumented, modules

    page = text_of(site / "reference" / "modules.html")
    for path in (ROOT / "gateway").rglob("*.py"):
        name = path.parent.name + "/" if path.name == "__init__.py" else path.name
        assert name in page, f"{path.relative_to(ROOT)} is not in the modules reference"
    assert "validation/" in page and "gateway.validation" in page  # a package and its layer
    bare = tmp_path / "gateway" / "bare.py"
    bare.parent.mkdir()
    (bare.parent / "__init__.py").write_text('"""A package."""\n')
    bare.write_text("x = 1\n")
    with pytest.raises(Undocumented, match="bare.py has no docstring"):
        modules.tree(bare.parent)


def test_the_chain_diagram_is_the_declared_order(site):
    svg = (site / "reference" / "request-chain.svg").read_text()
    drawn = re.findall(r'font-weight="bold">([^<]+)</text>', svg)
    assert tuple(drawn) == ORDER
    page = (site / "reference" / "request-chain.html").read_text()
    assert "orders</code></td>" in page and "authentication → quota → upstream" in html.unescape(page)


class Assets(HTMLParser):
    """What a page loads by itself: scripts, stylesheets, images, fonts."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if tag == "link" and attrs.get("rel") in ("stylesheet", "preload", "icon") \
                and attrs.get("href"):
            self.loaded.append(attrs["href"])


def test_the_site_loads_nothing_from_another_host(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        parser = Assets()
        parser.feed(page.read_text())
        remote = [url for url in parser.loaded if re.match(r"(https?:)?//", url)]
        assert not remote, (page.relative_to(site), remote)
        assert "fonts.googleapis" not in page.read_text()
    for stylesheet in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(['\"]?https?:", stylesheet.read_text()), stylesheet


@pytest.mark.browser
def test_the_site_renders_from_disk_with_its_chain_diagram_and_search(site, tmp_path):
    browser = Browser(tmp_path)
    dom = browser.dom((site / "architecture.html").as_uri())
    assert "Where a new feature goes" in dom and "request-chain.svg" in dom
    # the offline plugin inlines the search index: search works without a server
    assert (site / "search" / "search_index.js").read_text().startswith("var __index = ")
    dom = browser.dom((site / "reference" / "errors.html").as_uri())
    assert "rate_limited" in dom and "md-search" in dom
    assert browser.screenshot((site / "reference" / "request-chain.html").as_uri(),
                              "docs-request-chain").stat().st_size > 10_000


def test_the_operations_page_says_what_to_do_for_every_alert():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    alerts = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    page = (ROOT / "docs" / "operations.md").read_text()
    assert len(alerts) >= 5
    for alert in alerts:
        section = page.split(f"### {alert}\n", 1)
        assert len(section) == 2, f"docs/operations.md has no '### {alert}' section"
        assert "1. " in section[1].split("\n### ", 1)[0], f"{alert}: no steps to follow"


def yaml_blocks_after(page: str, marker: str) -> list[str]:
    """The YAML blocks of the content tabs whose title starts with ``marker``."""
    blocks = []
    for tab in page.split("=== ")[1:]:
        if tab.startswith(f'"{marker}'):
            block = re.search(r"```yaml\n(.*?)```", tab, re.S).group(1)
            blocks.append("\n".join(line[4:] for line in block.splitlines()))
    return blocks


def test_the_side_by_side_configs_of_ours_load(tmp_path):
    page = (ROOT / "docs" / "coming-from-kong-or-krakend.md").read_text()
    blocks = yaml_blocks_after(page, "This gateway")
    assert len(blocks) == 2
    for index, block in enumerate(blocks):
        path = tmp_path / f"gateway{index}.yaml"
        path.write_text(block)
        config = load_config(str(path))
        assert config.services


def test_the_readme_is_a_front_page_whose_first_config_loads(tmp_path):
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    section = readme.split("## Your first gateway.yaml", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    assert len(block.splitlines()) <= 16
    (tmp_path / "gateway.yaml").write_text(block)
    config = load_config(str(tmp_path / "gateway.yaml"))
    assert set(config.services) == {"users", "orders"} and config.consumers
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), f"the README links to {link}, which does not exist"


def test_a_changed_limit_starts_a_fresh_counter(make_gateway, upstream, redis_url):
    """What docs/guides/quotas.md warns about: the old window's hits do not carry over."""
    def gateway(limit: str):
        return make_gateway({"storage": redis_url, "services": {
            "users": {"upstream": upstream.url, "rate_limit": limit}}})

    before = gateway("2/minute")
    assert [requests.get(f"{before.url}/users/1").status_code for _ in range(3)] == [200, 200, 429]
    after = gateway("3/minute")  # what a reload with the new limit builds
    answer = requests.get(f"{after.url}/users/1")
    assert answer.status_code == 200 and answer.headers["RateLimit-Remaining"] == "2"
    again = gateway("2/minute")  # the old limit again: its window still counts
    assert requests.get(f"{again.url}/users/1").status_code == 429


def test_the_getting_started_configs_load_and_the_empty_file_error_is_as_shown(tmp_path):
    page = (ROOT / "docs" / "getting-started.md").read_text()
    first = page.split("## Your first service", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", first, re.S)
    assert len(blocks) == 2
    for index, block in enumerate(blocks):
        (tmp_path / f"{index}.yaml").write_text(block)
        assert "files" in load_config(str(tmp_path / f"{index}.yaml")).services
    empty = tmp_path / "gateway.yaml"
    empty.write_text("")
    gateway = Path(sys.executable).parent / "gateway"
    result = subprocess.run([str(gateway), "check", "--config", "gateway.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    shown = re.search(r"```text\n(.*?)```", first, re.S).group(1).strip()
    assert result.returncode == 1 and result.stderr.strip() == shown
    hashed = subprocess.run([str(gateway), "hash-key"], input="my-secret-key", text=True,
                            capture_output=True, timeout=60).stdout.strip()
    assert hashed in blocks[1]
