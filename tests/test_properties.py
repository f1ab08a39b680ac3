"""Property-based tests (hypothesis): what must hold for any input, not just the ones we thought of."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.compose.transform import Transformer
from gateway.config.transforms import TransformConfig
from gateway.errors import GatewayError
from tests.conftest import raw_request

pytestmark = pytest.mark.hostile
#: RFC 9110 §7.6.1 and the de-facto ones: never forwarded
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
              "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}
#: how many examples comes from the hypothesis profile (tests/conftest.py):
#: derandomized in `make test`, random seeds and more examples in `make fuzz`
EXAMPLES = settings(deadline=None, suppress_health_check=list(HealthCheck))
#: headers the gateway writes itself: a client's copy named in Connection is
#: dropped, and the gateway's own value goes upstream instead
GATEWAY_WRITTEN = {"x-request-id", "x-consumer", "x-forwarded-for", "x-forwarded-proto",
                   "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix"}
# what may stand in a request target: visible ASCII but '#', and percent-escapes
TARGET_CHARS = "".join(c for c in string.printable if c not in string.whitespace + "#")


@pytest.fixture
def site(make_gateway, serve):
    from tests.upstream import UpstreamApp
    users, admin = serve(UpstreamApp("users")), serve(UpstreamApp("admin"))
    gw = make_gateway({"services": {"users": users.url, "admin": admin.url,
                                    "api": {"upstream": users.url + "/base", "prefix": "/api/v1",
                                            "strip_prefix": True}}})
    return gw, users.app, admin.app


def test_any_path_stays_on_its_service_under_its_prefix(site, reliability):
    gw, users, admin = site
    tried = []

    @given(tail=st.text(alphabet=TARGET_CHARS, max_size=60),
           escapes=st.lists(st.sampled_from(["%2e", "%2E", "%2f", "%2F", "%5c", "%00", "%ff",
                                             "..", ".", "//", "\\"]), max_size=4),
           prefix=st.sampled_from(["/users/", "/api/v1/"]))
    @EXAMPLES
    def stays(tail, escapes, prefix):
        target = prefix + "".join(escapes) + tail
        tried.append(target)
        answer = raw_request(gw.port, "GET", target)
        assert answer.status < 500, (target, answer.body[:200])
        if answer.status == 200 and answer.body.startswith(b'{"upstream"'):
            seen = json.loads(answer.body)
            assert seen["upstream"] == "users"
            path = seen["raw_uri"].split("?")[0]
            expected = "/users/" if prefix == "/users/" else "/base/"
            assert path.startswith(expected), (target, seen["raw_uri"])
            assert "/../" not in path + "/" and not path.endswith("/..")
    stays()
    assert admin.hits == 0, "a path reached another service"
    reliability.tried(len(tried))


def test_no_hop_by_hop_header_is_ever_forwarded(site, reliability):
    gw, users, admin = site
    tried = []
    names = st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=12).filter(
        lambda n: n.lower() not in ("host", "content-length", "transfer-encoding", "expect"))

    @given(listed=st.lists(names, max_size=4),
           hop=st.lists(st.sampled_from(["Keep-Alive", "Proxy-Authorization", "TE",
                                          "Trailer", "Upgrade", "Proxy-Connection"]),
                        max_size=3, unique=True))
    @EXAMPLES
    def filtered(listed, hop):
        headers = {name: "v" for name in listed + hop}
        headers["Connection"] = ", ".join(listed + ["close"]) if listed else "close"
        tried.append(headers)
        answer = raw_request(gw.port, "GET", "/users/echo", headers=headers)
        assert answer.status == 200
        seen = {k.lower(): v for k, v in json.loads(answer.body)["headers"].items()}
        dropped = ({h.lower() for h in listed + hop} | HOP_BY_HOP) - GATEWAY_WRITTEN
        assert not seen.keys() & dropped, seen.keys() & dropped
        for name in GATEWAY_WRITTEN & {h.lower() for h in listed}:
            assert seen.get(name) != "v", f"the client's {name}, named in Connection, went upstream"
    filtered()
    reliability.tried(len(tried))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["id", "name", "items", "total", "customer", "a", "b"]) | st.text(max_size=5),
        children, max_size=5),
    max_leaves=30)

EXPRESSIONS = ["{order_id: id, customer: {name: customer.name}, items: items[*].id}",
               "items[?total > `10`].name", "length(items)", "sort_by(items, &id)",
               "to_number(total)", "join(', ', items)", "max(items)", "{a: a, b: [b, `1`, 'x']}"]


def test_transformations_never_raise_on_any_json(reliability):
    tried = []
    transformers = [Transformer("s", TransformConfig.model_validate(
        {"request": {"body": e}, "response": {"body": e}})) for e in EXPRESSIONS]

    @given(document=json_values, raw=st.binary(max_size=40))
    @EXAMPLES
    def never_raises(document, raw):
        tried.append(document)
        for transformer in transformers:
            for body in (json.dumps(document).encode(), raw):
                try:
                    reshaped = transformer.request_body(body)
                    json.loads(reshaped)
                except GatewayError as refused:
                    assert refused.status == 400 and refused.code == "invalid_body"
                answer = transformer.response_body(body)
                assert answer is None or json.loads(answer) is not Ellipsis
    never_raises()
    reliability.tried(len(tried))
