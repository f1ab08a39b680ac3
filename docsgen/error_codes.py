"""The errors reference: every ``error`` code the gateway answers with.

The codes and their statuses are read from the source of ``gateway/``: every
call that makes an error (``GatewayError``, its subclasses, ``error_response``,
an aggregate's ``CallFailed``) whose code is a literal, plus werkzeug's
errors as ``gateway/errors.py`` names them. :data:`ADVICE` says when each
happens and what the client should do; a code found in the source without
advice is :class:`~docsgen.Undocumented`, so the page cannot leave one out.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import GATEWAY, Undocumented, source_nodes

#: The callables whose second argument is an error code.
MAKERS = {"GatewayError", "UpstreamError", "TokenError", "error_response"}
#: Codes that name why one call of an aggregate failed (in ``_errors``), not an answer.
CALL_MAKERS = {"CallFailed"}


@dataclass
class Code:
    code: str
    statuses: set[int | str] = field(default_factory=set)
    where: set[str] = field(default_factory=set)
    #: answered to a client (else only named in an aggregate's ``_errors``)
    answered: bool = False


def codes_in_source(root: Path = GATEWAY) -> dict[str, Code]:
    """Every error code a literal in ``gateway/`` raises or answers with."""
    found: dict[str, Code] = defaultdict(lambda: Code(""))
    for module, node in source_nodes(root):
        if not isinstance(node, ast.Call) or len(node.args) < 2:
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name not in MAKERS | CALL_MAKERS:
            continue
        status_arg, code_arg = node.args[0], node.args[1]
        if not (isinstance(code_arg, ast.Constant) and isinstance(code_arg.value, str)):
            continue
        entry = found[code_arg.value]
        entry.code = code_arg.value
        status = status_arg.value if isinstance(status_arg, ast.Constant) else None
        entry.statuses.add(status if isinstance(status, int) else "configurable")
        entry.where.add(module)
        entry.answered |= name in MAKERS
    from gateway.db.records import Refused
    for refusal in Refused.__subclasses__():  # the Admin API's, by class
        entry = found[refusal.code]
        entry.code = refusal.code
        entry.statuses.add(refusal.status)
        entry.where.add("gateway/db/records.py")
        entry.answered = True
    from gateway.errors import HTTP_ERROR_CODES
    for http_status, http_code in HTTP_ERROR_CODES.items():
        entry = found[http_code]
        entry.code = http_code
        entry.statuses.add(http_status)
        entry.where.add("gateway/errors.py")
        entry.answered = True
    return dict(found)


#: Statuses the source cannot show as a literal.
VARIABLE_STATUS = {"invalid_request": "400 (or 422: `validate.status`)",
                   "upstream_status": "the service's own status"}

#: code: (when it happens, what the client should do)
ADVICE: dict[str, tuple[str, str]] = {
    "bad_request": ("The request is malformed at the HTTP level (werkzeug refused it).",
                    "Fix the request; the message says what was wrong."),
    "bad_path": ("The path, decoded, has `.`, `..` or empty segments or a NUL byte (it "
                 "would reach somewhere else than it looks), or a path parameter of an "
                 "aggregate does not fit its converter.",
                 "Send the normalised path."),
    "not_found": ("No route matches the path: no service prefix, blueprint or aggregate "
                  "(Admin API: no consumer or key of that name).",
                  "Check the path against `gateway check`'s route table or `/docs`."),
    "method_not_allowed": ("The route does not accept the method (a service's `methods`, or "
                           "the operation is not in its OpenAPI document under validation). "
                           "The `Allow` header lists what it accepts.",
                           "Use one of the methods in `Allow`."),
    "request_timeout": ("The client took too long to send its request.",
                        "Send the body promptly; retry."),
    "length_required": ("A body came without `Content-Length` or chunked encoding.",
                        "Send `Content-Length` or `Transfer-Encoding: chunked`."),
    "body_too_large": ("The body is larger than the route's `max_body_bytes`, than what a "
                       "`transform` or validation reads (1 MiB), or than nginx allows.",
                       "Send a smaller body, or ask for the route's limit to be raised."),
    "uri_too_long": ("The request line is longer than the server accepts.",
                     "Move parameters into a body."),
    "headers_too_large": ("The headers are larger than the server accepts.",
                          "Send fewer or shorter headers (large cookies are the usual cause)."),
    "internal_error": ("A bug in the gateway or in a hand-written blueprint; the traceback is "
                       "in the gateway's log under the request id.",
                       "Retry once; report the `request_id` if it persists."),
    "incomplete_body": ("The client closed the connection before sending all of the "
                        "`Content-Length` it announced; nothing was forwarded as complete.",
                        "Resend the whole body."),
    "invalid_body": ("A route with a request `transform` got a body that is not JSON or does "
                     "not fit the transform's expression; on the Admin API, a body that is not "
                     "JSON or not what the endpoint takes (`pointer` is the JSON pointer of "
                     "the first problem, `\"\"` the whole body).",
                     "Send the JSON the route documents (the Admin API's: its /openapi.json)."),
    "missing_api_key": ("The route has `auth: api_key` and the request has no `X-API-Key`.",
                        "Send your key in `X-API-Key` (or the WebSocket's "
                        "`credentials_query` parameter)."),
    "invalid_api_key": ("The key is not any consumer's.",
                        "Check the key; ask the gateway's operators for one."),
    "forbidden": ("The key is valid but its consumer's `services` does not list this route; "
                  "or `/metrics` or the status page was asked from an address outside "
                  "`metrics_allow_ips`.",
                  "Ask for access to the service; scrape metrics from an allowed address."),
    "missing_token": ("The route has `auth: jwt` and the request has no "
                      "`Authorization: Bearer` token. `WWW-Authenticate` says so.",
                      "Get a token from the identity provider and send it."),
    "invalid_token": ("The token's signature, issuer, audience, expiry or algorithm is wrong, "
                      "or it is too large (over 8 kB). `WWW-Authenticate` says which.",
                      "Get a new token; check the clock if it is `not yet valid`."),
    "insufficient_scope": ("The token lacks a scope the route's `scopes` requires.",
                           "Ask for a token with the scopes the message names."),
    "identity_provider_unavailable": ("The issuer's keys (JWKS) or introspection endpoint "
                                      "could not be reached and no kept copy can decide. "
                                      "`Retry-After` is set.",
                                      "Retry after `Retry-After` seconds."),
    "ip_forbidden": ("The client's address is in `deny_ips` or outside `allow_ips`.",
                     "Call from an allowed network."),
    "origin_not_allowed": ("A CORS preflight or WebSocket handshake came from an `Origin` not "
                           "in the route's `cors.origins`.",
                           "Serve the page from an allowed origin."),
    "quota_exhausted": ("The consumer has used its allowance for the calendar period (its "
                        "plan's or its own `quota`, e.g. `10000/month`, in UTC). "
                        "`Retry-After` and `X-Quota-Reset` say when the next period starts.",
                        "Wait for the next period, or move to a plan with a larger quota: "
                        "slowing down does not help."),
    "rate_limited": ("The consumer (or client address) used up a quota: the route's "
                     "`rate_limit` or the consumer's own. `Retry-After` and the "
                     "`RateLimit-*` headers say when it resets.",
                     "Wait `Retry-After` seconds; spread requests out."),
    "storage_unavailable": ("The shared store (Redis) is down and `on_storage_error: deny` "
                            "is set, so quotas refuse rather than admit uncounted.",
                            "Retry shortly; operators: see Operations, storage down."),
    "too_many_connections": ("The consumer already holds `websocket.max_per_consumer` "
                             "WebSocket connections to the service.",
                             "Close a connection before opening another."),
    "websocket_not_enabled": ("A WebSocket handshake came to a service without `websocket`.",
                              "Use plain HTTP, or ask for `websocket: true` on the service."),
    "websocket_not_supported": ("A WebSocket handshake reached a gateway that cannot hand over "
                                "its socket (under AWS Lambda, or a server without it).",
                                "Connect through the gunicorn deployment."),
    "invalid_request": ("Validation (`validate`) found the request does not fit the "
                        "service's OpenAPI document; `problems` lists each with its location.",
                        "Fix what each problem names; `/docs` has the schema."),
    "unsupported_media_type": ("Validation: the body's `Content-Type` is not one the "
                               "operation accepts.",
                               "Send a media type the operation documents."),
    "unknown_operation": ("Validation: the path is under the service but in no operation of "
                          "its OpenAPI document (`validate.unknown_operations: refuse`).",
                          "Use a documented path."),
    "validation_unavailable": ("Validation: the service's OpenAPI document could not be "
                               "fetched yet (`validate.on_missing_document: refuse`); it is "
                               "fetched again with backoff.",
                               "Wait `Retry-After` seconds; nothing was sent upstream."),
    "unauthorized": ("Admin API: no `Authorization: Bearer` token, or one that is not in "
                     "`admin.tokens`.", "Send a token of `admin.tokens` (the refusal is logged "
                     "with your address, never the token)."),
    "database_unavailable": ("Admin API: the database did not answer; nothing was changed.",
                             "Retry after `Retry-After` seconds."),
    "already_exists": ("Admin API: a consumer of that name exists (or an import would "
                       "create one that does: nothing was imported).",
                       "Choose another name, or change the existing consumer (PATCH)."),
    "read_only": ("Admin API: the consumer is written in gateway.yaml; it cannot be changed "
                  "at runtime.", "Change it in gateway.yaml and reload the gateway."),
    "bad_gateway": ("The upstream refused the connection, reset it, failed the TLS handshake "
                    "or answered with something that is not HTTP; for an aggregate, a "
                    "`required` call or every call failed (`_errors` says why).",
                    "Retry later; report the `request_id` if it persists."),
    "gateway_timeout": ("The upstream (or an aggregate's call) did not answer within the "
                        "service's `timeout.read` (or the aggregate's `timeout`).",
                        "Retry later, with backoff; a non-idempotent request may have run."),
    "upstream_unavailable": ("Every target of the service has its circuit open. "
                             "`Retry-After` says when the next trial is.",
                             "Wait `Retry-After` seconds; the gateway sent nothing upstream."),
    "dependency_failed": ("In an aggregate's `_errors`: the call needs a field from a call "
                          "that failed.", "See the failed call's own entry."),
    "unresolved_reference": ("In an aggregate's `_errors`: the call refers to a field the "
                             "earlier call's answer lacks.",
                             "Check the earlier call's answer; the service may have changed."),
    "upstream_status": ("In an aggregate's `_errors`: the service answered non-2xx; `status` "
                        "is its status.", "Read the service's own error."),
    "invalid_json": ("In an aggregate's `_errors`: the service's answer is not JSON.",
                     "Report it to the service's owners."),
    "response_too_large": ("In an aggregate's `_errors`: the call's answer is larger than "
                           "`max_call_bytes`.", "Ask for a smaller answer (paging)."),
    "select_failed": ("In an aggregate's `_errors`: the call's `select` expression failed on "
                      "its answer.", "Report it to the gateway's operators."),
}


def render() -> str:
    """The errors reference, in Markdown."""
    codes = codes_in_source()
    missing = sorted(set(codes) - set(ADVICE))
    if missing:
        raise Undocumented(f"error codes without advice in docsgen/error_codes.py: {missing}")
    lines = [
        "# Errors reference",
        "",
        "Every error the gateway answers itself is JSON:",
        "",
        "```json",
        '{"error": "rate_limited", "message": "a sentence saying what to do", '
        '"request_id": "4bf92f3577b34da6"}',
        "```",
        "",
        "`error` is one of the codes below (a contract: match on it, not on `message`); "
        "`request_id` is also in the `X-Request-ID` header and the access log. An answer "
        "from an upstream service passes through untouched, whatever its status. This "
        "page is generated from the source of `gateway/`: the codes and statuses are those "
        "its code raises.",
        "",
        "| `error` | status | when | what the client should do |",
        "|---|---|---|---|",
    ]
    answered = sorted((c for c in codes.values() if c.answered),
                      key=lambda c: (min(_number(s) for s in c.statuses), c.code))
    for entry in answered:
        lines.append(_row(entry))
    lines += [
        "",
        "## In an aggregate's `_errors`",
        "",
        "An aggregate answers 200 with `X-Gateway-Completed: false` when some of its calls "
        "fail, and `_errors.<call>: {status, error, message}` for each; these codes appear "
        "there (besides the transport's `bad_gateway`, `gateway_timeout` and "
        "`upstream_unavailable`). A `required` call failing makes the answer 502 "
        "`bad_gateway` with the same `_errors`.",
        "",
        "| `error` | status | when | what to do |",
        "|---|---|---|---|",
    ]
    for entry in sorted((c for c in codes.values() if not c.answered), key=lambda c: c.code):
        lines.append(_row(entry))
    return "\n".join(lines) + "\n"


def _number(status: int | str) -> int:
    return status if isinstance(status, int) else 999


def _row(entry: Code) -> str:
    when, action = ADVICE[entry.code]
    status = VARIABLE_STATUS.get(entry.code) or ", ".join(
        str(s) for s in sorted(entry.statuses, key=_number))
    return f"| `{entry.code}` | {status} | {when} | {action} |"
