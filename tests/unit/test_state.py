"""The request state's rules: which request id is kept, how long upstream calls took."""

from __future__ import annotations

import pytest

from gateway.state import RequestState, client_request_id, incoming_or_new


@pytest.mark.parametrize("environ,kept", [
    ({"HTTP_X_REQUEST_ID": "abc"}, "abc"),
    ({"HTTP_X_REQUEST_ID": "abc", "HTTP_CONNECTION": "keep-alive"}, "abc"),
    ({"HTTP_X_REQUEST_ID": "abc", "HTTP_CONNECTION": "close, X-Request-ID"}, None),
    ({"HTTP_X_REQUEST_ID": "abc", "HTTP_CONNECTION": " x-request-id "}, None),
    ({}, None),
])
def test_a_request_id_named_in_connection_is_not_the_clients_to_keep(environ, kept):
    assert client_request_id(environ) == kept


@pytest.mark.parametrize("value,kept", [
    ("abc-123_x.y", True), ("a" * 128, True), ("a" * 129, False), ("has space", False),
    ("", False), (None, False)])
def test_only_well_formed_ids_are_kept(value, kept):
    made = incoming_or_new(value)
    assert (made == value) is kept and len(made) <= 128


@pytest.mark.parametrize("calls,ms", [
    ([], None),
    ([(0.0, 0.3)], 300.0),
    ([(0.0, 0.3), (0.0, 0.3), (0.1, 0.3)], 300.0),     # concurrent: counted once
    ([(0.0, 0.1), (0.2, 0.3)], 200.0),                  # one after the other: both
    ([(0.2, 0.5), (0.0, 0.3)], 500.0),                  # overlapping, recorded out of order
])
def test_upstream_ms_is_the_time_some_call_was_in_flight(calls, ms):
    state = RequestState("id", 0.0, upstream_calls=list(calls))
    assert state.upstream_ms == pytest.approx(ms) if ms is not None else state.upstream_ms is None
