"""The suite itself: every server a test needs is its own, and none outlives it."""

from __future__ import annotations

import os

from tests.conftest import stop_group, wait_for


def test_the_suites_redis_is_its_own(redis_url):
    # a Redis some other program uses (on 6379) would have its commands counted
    assert not redis_url.startswith("redis://127.0.0.1:6379")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent has ended too
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_stopping_a_server_ends_everything_it_started(tmp_path):
    """A server that starts others (examples.run starts gunicorn, gunicorn its workers),
    one of which ignores TERM: stop_group leaves none of them running."""
    import subprocess
    import sys

    pid_file = tmp_path / "grandchild.pid"
    grandchild_code = tmp_path / "grandchild.py"
    grandchild_code.write_text(
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "time.sleep(600)\n")
    parent_code = tmp_path / "parent.py"
    parent_code.write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]])\n"
        "time.sleep(600)\n")
    process = subprocess.Popen([sys.executable, str(parent_code), str(grandchild_code),
                                str(pid_file)], start_new_session=True)
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
    grandchild = int(pid_file.read_text())
    stop_group(process, timeout=5)
    assert wait_for(lambda: not alive(grandchild), timeout=5)
