"""``gateway check`` for gunicorn's master, answered in a fraction of a second.

The master validates the config before it starts and before every reload, in
a child process (it must import nothing gevent has to patch first). Starting
``python -m gateway.cli check`` costs an interpreter and every import of the
gateway each time: 1.3 s on a quiet machine, 10 s on a busy one, during which
a reload waits. So the master starts this process once: it imports the
gateway's config and routing code, then for each request forks a child that
runs ``gateway check`` on the file (importing the file's blueprints afresh,
as a reload's workers will) and reports its exit status and output. The master
falls back to the plain child process whenever this one cannot answer.

Protocol: one JSON line in (``{"argv": [...], "env": {...}}``), one JSON line
out (``{"code": int, "stdout": str, "stderr": str}``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def run_check(argv: list[str], env: dict[str, str]) -> dict:
    """Fork; the child runs ``gateway <argv>`` with ``env``, its output in files."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: a fresh run of the command, nothing shared back
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.environ.clear()
                os.environ.update(env)
                from gateway.cli import main
                try:
                    main.main(args=argv, prog_name="gateway", standalone_mode=True)
                    code = 0
                except SystemExit as exit_:
                    code = exit_.code if isinstance(exit_.code, int) else (1 if exit_.code else 0)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return {"code": os.waitstatus_to_exitcode(status),
                "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace")}


def serve() -> None:
    import gateway.cli  # noqa: F401  (the imports every check needs, done once)

    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        answer = run_check(request["argv"], request["env"])
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
