"""The upstream call of a proxied request, and the steps that change how it is made.

lura's shape: a :data:`Send` takes a :class:`Call` and returns the upstream's
:class:`~gateway.transport.Answer`; a step is ``step(next) -> Send`` that
does its part around ``next``. :func:`build_send` stacks the ones a service's
config switches on, once, at start-up, one per line in the order a call meets
them; a feature that is off is not in the stack at all, so it costs nothing:

    canary branch -> request transform -> mirror copy -> the upstream itself

The view (gateway/routing/proxy.py) makes the :class:`Call` from the request
and turns the :class:`Answer` into the response; everything in between is here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .. import state as request_state
from ..compose.transform import Transformer
from ..errors import GatewayError
from ..transport import Answer, Upstream
from .mirror import Mirror
from .requestbody import RequestBody, TooLarge


@dataclass
class Call:
    """One call to a service, as the steps shape it."""

    method: str
    #: the raw path after ``strip_prefix``, without the query
    path: str
    query: str
    headers: dict[str, str]
    body: RequestBody
    upstream: Upstream
    #: the client sent a ``?`` with nothing after it: it goes upstream too
    bare_question_mark: bool = False
    #: what goes upstream as the body, once a step has fixed it (else the body as it comes)
    payload: tuple[Iterator[bytes] | bytes | None, bool] | None = field(default=None)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query or self.bare_question_mark else self.path

    def sent_body(self) -> tuple[Iterator[bytes] | bytes | None, bool]:
        """The body the upstream gets and whether chunked (fixed on first ask)."""
        if self.payload is None:
            self.payload = self.body.for_upstream()
        return self.payload


Send = Callable[[Call], Answer]
Step = Callable[[Send], Send]


def send_upstream(call: Call) -> Answer:
    """The call itself: the request id and consumer are added by the transport."""
    body, chunked = call.sent_body()
    return call.upstream.send(call.method, call.target, call.headers, body, chunked,
                              can_retry=body is None or isinstance(body, bytes))


def canary_branch(canary: Upstream) -> Step:
    """The canary's targets when the chain chose that branch (gateway/policies/canary.py)."""
    def step(next_send: Send) -> Send:
        def send(call: Call) -> Answer:
            if request_state.current().branch == "canary":
                call.upstream = canary
            return next_send(call)
        return send
    return step


def request_transform(transformer: Transformer, max_buffer: int) -> Step:
    """Headers and query edited; a body the transform reshapes read whole (413 over the
    route's cap) and reshaped."""
    reshapes_body = transformer.request.body is not None

    def step(next_send: Send) -> Send:
        def send(call: Call) -> Answer:
            body = None
            if reshapes_body and call.body.present:
                try:
                    call.body.whole(max_buffer)
                except TooLarge:
                    raise GatewayError(413, "body_too_large", f"this route reshapes request "
                                       f"bodies of at most {max_buffer} bytes") from None
                body, _ = call.sent_body()
            call.headers, call.query, body = transformer.outgoing(call.headers, call.query, body)
            if body is not None:
                call.payload = (body, False)
            return next_send(call)
        return send
    return step


def mirror_copy(mirror: Mirror, max_buffer: int) -> Step:
    """A sampled request's copy, sent once the primary's request has been read: what the
    primary was sent, after the transform (too large: counted, not sent)."""
    def step(next_send: Send) -> Send:
        def send(call: Call) -> Answer:
            if not mirror.sampled():
                return next_send(call)
            if call.payload is None:
                mirror.read_for_copy(call.body, max_buffer)
            body, _ = call.sent_body()
            copy = mirror.copy_of(body)
            try:
                return next_send(call)
            finally:
                if call.body.present and copy is None:
                    mirror.count("too_large")
                else:
                    mirror.send(call.method, call.target, call.headers, copy)
        return send
    return step


def build_send(canary: Upstream | None, transformer: Transformer | None,
               mirror: Mirror | None, max_buffer: int) -> Send:
    """A service's call, with the steps its config switches on (innermost first)."""
    send: Send = send_upstream
    if mirror is not None:
        send = mirror_copy(mirror, max_buffer)(send)
    if transformer is not None:
        send = request_transform(transformer, max_buffer)(send)
    if canary is not None:
        send = canary_branch(canary)(send)
    return send
