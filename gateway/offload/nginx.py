"""``gateway nginx``: the nginx ``http {}`` block that offloads services, from gateway.yaml.

Each offloaded service gets a location on its prefix that asks the gateway first
(``auth_request``, gateway/offload/decisions.py), sets what the answer says on the
request upstream and on the answer to the client, replays the gateway's answer when
the request is not allowed, and proxies to an ``upstream`` block of its own
(keep-alive, failover to the next target). nginx's own errors in those locations
(a body over the route's limit, an upstream that fails, the gateway down) answer in
the gateway's JSON shape. Every other path goes to the gateway, as
deploy/nginx.conf does. The block carries a fingerprint of the services it was
made from: ``gateway check --nginx-conf`` says when gateway.yaml has moved on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from ..config import GatewayConfig, ServiceConfig
from .decisions import (
    ANSWER_HEADER,
    ANSWER_PATH,
    DECIDE_PATH,
    DEFAULT_LOG_SOCKET,
    DOWN,
    DOWNSTREAM,
    LOG_HEADER,
    UP,
)

#: the line the fingerprint is on (``gateway check --nginx-conf`` reads it)
FINGERPRINT = "# gateway-fingerprint: "
DEFAULT_LISTEN = "80"
DEFAULT_GATEWAY = "127.0.0.1:8000"
#: the body limit nginx applies where the gateway applies its own (the default's, 1 MiB,
#: is too small for the gateway's routes; each route's own limit is the gateway's JSON 413)
EDGE_BODY_LIMIT = "100m"


def fingerprint(config: GatewayConfig) -> str:
    """What the offloaded locations are made from: a change to it needs a new file."""
    services = {name: service.model_dump(mode="json", by_alias=True)
                for name, service in config.services.items()}
    text = json.dumps({"services": services, "trusted_proxies": config.trusted_proxies},
                      sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def render(config: GatewayConfig, listen: str = DEFAULT_LISTEN,
           gateway: str = DEFAULT_GATEWAY, log_socket: str = DEFAULT_LOG_SOCKET) -> str:
    """The ``http {}`` block (no main-context directive, no absolute path but the log
    socket's)."""
    offloaded = [s for s in config.services.values() if s.offload]
    lines = [
        f"# Written by `gateway nginx` from {config.source}: write it again after a change",
        "# to gateway.yaml (`gateway check --nginx-conf FILE` says when it no longer matches).",
        f"{FINGERPRINT}{fingerprint(config)}",
        "http {",
        "    upstream gateway {",
        f"        server {gateway};",
        "        keepalive 64;",
        "        keepalive_timeout 4s;",
        "    }",
    ]
    for service in offloaded:
        lines += _upstream_block(service)
        lines += _log_format(service)
    lines += [
        # a chunked body's length is known only at its end, which nginx does not wait for
        "    map $http_transfer_encoding $gw_body_size {",
        '        ""      "$content_length bytes";',
        '        default "over the limit";',
        "    }",
        "    map $http_upgrade $connection_upgrade {",
        "        default upgrade;",
        "        ''      '';",
        "    }",
        "    server_tokens off;",
        f"    client_max_body_size {EDGE_BODY_LIMIT};",
        "    server {",
        f"        listen {listen};",
        "        # what an offloaded request's log line says of how it ended (named locations set them)",
        '        set $gw_answered "";',
        '        set $gw_error "";',
        "",
        "        # the gateway decides each request of an offloaded service (auth_request)",
        f"        location = {DECIDE_PATH} {{",
        "            internal;",
        "            proxy_pass http://gateway;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_pass_request_body off;",
        '            proxy_set_header Content-Length "";',
        "            proxy_set_header X-Original-Method $request_method;",
        "            proxy_set_header X-Original-URI $request_uri;",
        "            proxy_set_header X-Original-Length $http_content_length;",
        "            proxy_set_header X-Original-Transfer-Encoding $http_transfer_encoding;",
        "            proxy_set_header X-Original-Upgrade $http_upgrade;",
        *_forwarded("            "),
        "        }",
    ]
    for service in offloaded:
        lines += _service_locations(service, log_socket, config.tracing is not None)
    lines += [
        "",
        "        # everything else: the gateway",
        "        location / {",
        "            proxy_pass http://gateway;",
        "            proxy_http_version 1.1;",
        "            proxy_set_header Upgrade $http_upgrade;",
        "            proxy_set_header Connection $connection_upgrade;",
        "            proxy_set_header Host $host;",
        *_forwarded("            "),
        "            proxy_buffering off;",
        "            proxy_request_buffering off;",
        "            proxy_read_timeout 310s;",
        "            proxy_send_timeout 310s;",
        "        }",
        "        location = /metrics { return 404; }",
        "        location ~ ^/_gateway/(?!usage$) { return 404; }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


#: what nginx writes of each offloaded request (gateway/offload/logs.py reads it): the
#: decision's own account (``gateway``) and what only nginx saw
LOGGED = (("gateway", "$gw_log"), ("status", "$status"), ("request_time", "$request_time"),
          ("msec", "$msec"), ("method", "$request_method"), ("uri", "$request_uri"),
          ("client", "$remote_addr"), ("body_bytes_sent", "$body_bytes_sent"),
          ("content_length", "$content_length"), ("upstream", "$upstream_addr"),
          ("upstream_header_time", "$upstream_header_time"), ("answered", "$gw_answered"),
          ("error", "$gw_error"), ("nginx_request_id", "$request_id"))


def _log_format(service: ServiceConfig) -> list[str]:
    fields = ",".join(f'"{key}":"{value}"' for key, value in
                      (("service", service.name), *LOGGED))
    return [f"    log_format {_name(service)} escape=json '{{{fields}}}';"]


def _access_log(service: ServiceConfig, log_socket: str) -> str:
    # one datagram per request, sent when it ends (nginx drops a line it cannot send)
    return (f"            access_log syslog:server=unix:{log_socket},nohostname,tag=gateway "
            f"{_name(service)};")


def _name(service: ServiceConfig) -> str:
    return "offload_" + re.sub(r"[^A-Za-z0-9_]", "_", service.name)


def _upstream_block(service: ServiceConfig) -> list[str]:
    servers = []
    for url in service.upstreams:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        servers.append(f"        server {parts.hostname}:{port};")
    return [f"    upstream {_name(service)} {{", *servers, "        keepalive 32;", "    }"]


def _forwarded(indent: str) -> list[str]:
    """Who the client is, as nginx saw it: a client-sent X-Forwarded-For is replaced."""
    return [f"{indent}proxy_set_header X-Forwarded-For $remote_addr;",
            f"{indent}proxy_set_header X-Forwarded-Proto $scheme;",
            f"{indent}proxy_set_header X-Forwarded-Host $host;",
            f"{indent}proxy_set_header X-Forwarded-Port $server_port;"]


def _json_error(code: str, status: int, message: str, name: str,
                extra: Sequence[str] = ()) -> list[str]:
    body = json.dumps({"error": code, "message": message, "request_id": "$request_id"})
    return [f"        location @{name} {{", *extra,
            "            default_type application/json;",
            "            add_header X-Request-ID $request_id always;",
            f"            return {status} '{body}';",
            "        }"]


def _variable(prefix: str, header: str) -> str:
    return f"$gw_{prefix}_" + header.lower().replace("-", "_")


def _from_decision(header: str) -> str:
    """The variable nginx holds a header of the decision's answer in."""
    return "$upstream_http_" + header.lower().replace("-", "_")


def _service_locations(service: ServiceConfig, log_socket: str, traced: bool) -> list[str]:
    """The offloaded service's locations: its prefix itself and everything under it, and
    the named locations its refusals and failures end in (each writes the service's log
    line)."""
    name = _name(service)
    prefix = service.prefix.rstrip("/")
    base = urlsplit(service.upstreams[0]).path.rstrip("/")
    up_headers = ["X-Request-ID", "X-Consumer", *service.claims_to_headers]
    if traced:
        up_headers.append("traceparent")  # the decision's span, the upstream's parent
    limit = service.max_body_bytes
    access_log = _access_log(service, log_socket)
    body = [f"            auth_request_set $gw_log {_from_decision(LOG_HEADER)};"]
    for header in up_headers:
        body.append(f"            auth_request_set {_variable('up', header)} "
                    f"{_from_decision(UP + header)};")
    for header in DOWNSTREAM:
        body.append(f"            auth_request_set {_variable('down', header)} "
                    f"{_from_decision(DOWN + header)};")
    body += [
        f"            auth_request {DECIDE_PATH};",
        f"            auth_request_set $gw_answer {_from_decision(ANSWER_HEADER)};",
        f"            error_page 401 403 = @answer_{name};",
        f"            error_page 500 = @unavailable_{name};",
        f"            error_page 502 = @bad_gateway_{name};",
        f"            error_page 504 = @timeout_{name};",
        f"            error_page 413 = @too_large_{name};",
        f"            client_max_body_size {limit if limit is not None else EDGE_BODY_LIMIT};",
        access_log,
    ]
    body += [f"            add_header {h} {_variable('down', h)} always;" for h in DOWNSTREAM]
    body += [f"            proxy_set_header {h} {_variable('up', h)};" for h in up_headers]
    # the upstream learns the consumer, never its key or (unless asked) its token
    if "api_key" in service.auth_methods:
        body.append('            proxy_set_header X-API-Key "";')
    if "jwt" in service.auth_methods and not service.forward_token:
        body.append('            proxy_set_header Authorization "";')
    first = urlsplit(service.upstreams[0])
    # one Host for every target (nginx's upstream block has no per-server header): the
    # first target's, as the gateway sends it to that target
    host = "$host" if service.preserve_host else first.netloc
    body.append(f"            proxy_set_header Host {host};")
    body += [
        *_forwarded("            "),
        "            proxy_http_version 1.1;",
        "            proxy_set_header Upgrade $http_upgrade;",
        "            proxy_set_header Connection $connection_upgrade;",
        "            proxy_buffering off;",
        # a body limit is enforced on the whole body before the upstream sees any of it
        # (a chunked one too: its length is known only at its end), as the gateway does
        f"            proxy_request_buffering {'on' if limit is not None else 'off'};",
        f"            proxy_connect_timeout {service.timeout.connect:g}s;",
        f"            proxy_read_timeout {_read_timeout(service):g}s;",
        "            proxy_next_upstream error timeout;",
        f"            proxy_next_upstream_tries {service.retries + 1};",
    ]
    # the path goes upstream as the gateway sends it: the prefix kept, or stripped
    kept = prefix if not service.strip_prefix else ""
    exact = f"http://{name}{base}{kept}" if kept else f"http://{name}{base}/"
    locations = []
    for match, target in ((f"= {prefix or '/'}", exact),
                          (f"^~ {prefix}/", f"http://{name}{base}{kept}/")):
        locations += ["", f"        # {service.name}: offloaded", f"        location {match} {{",
                      *body, f"            proxy_pass {target};", "        }"]
    locations += [
        f"        # {service.name}: a request the gateway did not let through, its answer replayed",
        f"        location @answer_{name} {{",
        "            set $gw_answered 1;",
        access_log,
        f"            rewrite ^ {ANSWER_PATH} break;",
        "            proxy_pass http://gateway;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_method GET;",
        "            proxy_pass_request_body off;",
        '            proxy_set_header Content-Length "";',
        f"            proxy_set_header {ANSWER_HEADER} $gw_answer;",
        "        }",
    ]
    # (the gateway's own words: a body over the limit is refused by nginx before it asks)
    limit_text = str(limit) if limit is not None else EDGE_BODY_LIMIT
    for code, status, message, location, error in (
            ("gateway_unavailable", 503, "the gateway cannot decide this request now; try "
             "again shortly", f"unavailable_{name}", "gateway_unavailable"),
            ("bad_gateway", 502, "the upstream could not be reached or broke off its answer",
             f"bad_gateway_{name}", "connect"),
            ("gateway_timeout", 504, "the upstream did not answer in time",
             f"timeout_{name}", "timeout"),
            ("body_too_large", 413, "the body is $gw_body_size; this route takes at "
             f"most {limit_text}", f"too_large_{name}", "")):
        extra = [f"            set $gw_error {error};"] if error else []
        locations += _json_error(code, status, message, location, [*extra, access_log])
    return locations


def _read_timeout(service: ServiceConfig) -> float:
    idle = service.websocket.idle_timeout if service.websocket is not None else 0
    return max(service.timeout.read, idle or 0)
