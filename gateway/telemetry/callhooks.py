"""What every upstream call of a request carries, and where it reports.

:class:`RequestCallHooks` is the gateway's :class:`~gateway.transport.CallHooks`,
shared by all services: each call carries the request id, the consumer and
the claims' headers, its attempts become client spans when tracing is on, and
its target, time and failure land on the request's state (the access log and
metrics read them there). A call made outside any request carries and
reports nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from ..state import REQUEST_ID_HEADER, current_or_none
from ..transport import CallHooks


class RequestCallHooks(CallHooks):
    def __init__(self, traced: bool = False):
        """:param traced: the app traces requests; otherwise attempts cost one attribute read."""
        self.traced = traced

    def headers(self) -> dict[str, str]:
        state = current_or_none()
        if state is None:
            return {}
        headers = {REQUEST_ID_HEADER: state.request_id}
        if state.consumer:
            headers["X-Consumer"] = state.consumer
        if state.claim_headers:
            headers.update(state.claim_headers)
        return headers

    def attempt(self, method: str, target: str, number: int, breaker: str,
                headers: dict[str, str]) -> Callable[[int | None, str | None], None]:
        state = current_or_none() if self.traced else None
        if state is None or state.tracing is None:
            return super().attempt(method, target, number, breaker, headers)
        return state.tracing.attempt(method, target, number, breaker, headers)

    def record(self, target: str, started: float, ended: float, error: str | None) -> None:
        state = current_or_none()
        if state is None:
            return
        if target:
            state.upstream_target = target
        state.upstream_calls.append((started, ended))
        if error is not None:
            state.upstream_error = error
