"""nginx for the benchmark, each a private nginx on loopback: the backend
(``return 200`` with a small JSON body), one file for every path (downloads), a plain
``proxy_pass`` in front of it,
and a backend that answers after 200 ms (``echo_sleep``, Debian's
libnginx-mod-http-echo): in C, so it is never what limits the slow-upstream row."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.apps import BODY

ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")

_COMMON = """
{modules}
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    keepalive_requests 1000000;
    {body}
}}
"""

BACKEND = """
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{json}'; }}
    }}
"""

SLOW = """
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; echo_sleep 0.2; echo '{json}'; }}
    }}
"""

FILES = """
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {directory}; try_files /{name} =404; }}
    }}
"""

PROXY = """
    upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""


WEBSOCKET_PROXY = """
    upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise SystemExit("nginx is not installed: apt-get install nginx (make bench does this "
                         "as root)")
    return found


def start(body: str, workers: int = 1, modules: str = "") -> subprocess.Popen:
    prefix = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    (prefix / "tmp").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(_COMMON.format(workers=workers, prefix=prefix, body=body, modules=modules))
    return subprocess.Popen([nginx_binary(), "-p", str(prefix), "-c", str(conf),
                             "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def backend(port: int) -> subprocess.Popen:
    return start(BACKEND.format(port=port, json=BODY.decode()))


def slow_backend(port: int) -> subprocess.Popen:
    if not ECHO_MODULE.exists():
        raise SystemExit("nginx's echo module is not installed: apt-get install "
                         "libnginx-mod-http-echo (make bench does this as root)")
    return start(SLOW.format(port=port, json=BODY.decode()), workers=1,
                 modules=f"load_module {ECHO_MODULE};")


def files(port: int, path: Path) -> subprocess.Popen:
    """The file at ``path`` for every request (the 1 MiB download rows)."""
    return start(FILES.format(port=port, directory=path.parent, name=path.name))


def proxy(port: int, upstream: int, workers: int) -> subprocess.Popen:
    return start(PROXY.format(port=port, upstream=upstream), workers=workers)


def websocket_proxy(port: int, upstream: int, workers: int) -> subprocess.Popen:
    """nginx alone carrying WebSockets: the ceiling of any proxy in the echo rows."""
    return start(WEBSOCKET_PROXY.format(port=port, upstream=upstream), workers=workers)
