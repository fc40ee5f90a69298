"""A throwaway PostgreSQL cluster for the tests (Debian's binaries under /usr/lib/postgresql/*/bin).

Usage (``.ci/run`` does this before ``make test``)::

    eval "$(python3 tests/support/pg_cluster.py start /tmp/some-dir)"   # exports FYERS_STORE_TEST_PG_DSN
    python3 tests/support/pg_cluster.py stop /tmp/some-dir

The cluster listens on 127.0.0.1 on a free port with password (scram) authentication for the test role
``fyers_test``, so tests can also prove that wrong credentials fail clearly. Run as root it runs the
server as the ``postgres`` system user (PostgreSQL refuses to run as root). Standard library only: it
runs before the project's virtualenv exists.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROLE = "fyers_test"
DATABASE = "fyers_test"


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<v>/bin`` that has ``initdb``, else ``initdb`` on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], **kwargs: object) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]


def start(base: Path) -> str:
    """Create and start a cluster under ``base``; return its DSN for the test role."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("pg_cluster: no PostgreSQL binaries (initdb) under /usr/lib/postgresql/*/bin or PATH")
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    sock_dir = base / "sock"
    sock_dir.mkdir(exist_ok=True)
    password = secrets.token_hex(12)
    pwfile = base / "superuser.pw"
    pwfile.write_text(secrets.token_hex(12) + "\n")
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock_dir, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    _run(
        _as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D", str(data),
                "-U", "postgres",
                "--pwfile", str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E", "UTF8",
                "--no-locale",
            ]
        )
    )
    # Throwaway cluster: durability off for speed; the library sets its own session settings.
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock_dir} -c fsync=off -c full_page_writes=off -c max_connections=300"
    _run(
        _as_server_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-o", options, "-w", "start"]
        )
    )
    psql = _as_server_user([str(bin_dir / "psql"), "-h", str(sock_dir), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"])
    _run([*psql, "-c", f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{password}'"])
    _run([*psql, "-c", f"CREATE DATABASE {DATABASE} OWNER {ROLE}"])
    (base / "port").write_text(str(port))
    return f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}"


def stop(base: Path) -> None:
    """Stop the cluster under ``base`` (fast shutdown) and remove its files."""
    bin_dir = find_bin_dir()
    data = base / "data"
    if bin_dir is not None and (data / "postmaster.pid").exists():
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 10
    while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in {"start", "stop"}:
        print("usage: pg_cluster.py start|stop DIR", file=sys.stderr)
        return 2
    base = Path(argv[2])
    if argv[1] == "start":
        print(f"export FYERS_STORE_TEST_PG_DSN='{start(base)}'")
    else:
        stop(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
