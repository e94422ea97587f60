"""The real ``quotebot`` process at start-up and at its edges: version, arguments, settings, stdin bytes, the
Procfile's web process, and ``tasks.py test``'s exit code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ROOT, run_cli
from tests.e2e.slack_api_server import SlackApiServer
from tests.e2e.slack_helpers import BOT_TOKEN, SIGNING_SECRET, free_port

QUOTEBOT = Path(sys.executable).with_name("quotebot")


def _run_bytes(args: list[str | bytes], stdin: bytes = b"", env: dict[str, str] | None = None):
    return subprocess.run([str(QUOTEBOT), *args], input=stdin, capture_output=True, env={**os.environ, **(env or {})},
                          timeout=120)


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    done = run_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"quotebot {version('quotebot')}"


def test_top_k_below_one_is_an_error_not_one_result(small_corpus: Path) -> None:
    done = run_cli("--corpus", str(small_corpus), "search", "--top-k", "0", "rockets")
    assert done.returncode == 2
    assert "--top-k must be at least 1" in done.stderr
    assert done.stdout == ""


def test_one_invalid_utf8_byte_on_stdin_loses_no_other_line(small_corpus: Path) -> None:
    stdin = b"rockets\nthe \xff ocean\nmars is cold\n"
    done = _run_bytes(["--corpus", str(small_corpus), "search", "--json", "--top-k", "1"], stdin)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    answers = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert [a["query"] for a in answers] == ["rockets", "the \ufffd ocean", "mars is cold"]
    assert "ocean" in answers[1]["results"][0]["text"]  # the bad line is still searched
    assert "mars" in answers[2]["results"][0]["text"]
    assert b"stdin line 2: not valid UTF-8" in done.stderr
    assert b"Traceback" not in done.stderr


def test_undecodable_bytes_and_lone_surrogates_in_a_query_are_no_internal_error(small_corpus: Path) -> None:
    # \xed\xa0\x80 is a UTF-8-encoded lone surrogate (U+D800); Python hands such bytes over as lone surrogates
    done = _run_bytes(["--corpus", str(small_corpus), "search", "--json", b"raptor \xed\xa0\x80 engine \xff"])
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    answer = json.loads(done.stdout.decode("utf-8"))
    assert answer["query"].startswith("raptor \ufffd") and answer["query"].endswith("engine \ufffd")
    assert "Raptor engine" in answer["results"][0]["text"]
    ask = _run_bytes(["--corpus", str(small_corpus), "ask", b"raptor \xed\xa0\x80 engine"])
    assert ask.returncode == 0, ask.stderr.decode(errors="replace")
    assert "Raptor engine" in ask.stdout.decode("utf-8")
    assert b"Traceback" not in ask.stderr


def test_a_mistyped_variable_is_warned_about_at_start_up(small_corpus: Path) -> None:
    done = run_cli("--corpus", str(small_corpus), "search", "rockets", env={"QUOTEBOT_EPHEMRAL": "false"})
    assert done.returncode == 0
    assert "quotebot: warning: QUOTEBOT_EPHEMRAL is not a quotebot setting; did you mean QUOTEBOT_EPHEMERAL?" \
        in done.stderr


def test_defer_after_past_discords_window_stops_start_up_naming_it(small_corpus: Path) -> None:
    done = run_cli("--corpus", str(small_corpus), "search", "rockets", env={"QUOTEBOT_DEFER_AFTER": "3"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "quotebot: setting error: QUOTEBOT_DEFER_AFTER: must be more than 0 and at most 2.5 seconds "
        "(Discord allows 3 s for the first response), got 3"
    ]


@pytest.mark.parametrize("url", ["postgresql+asyncpg://bot:hunter2@db.example:54x2/quotebot",
                                 "postgresql://bot:hunter2@db.example:5432", "bot:hunter2@db.example/quotebot"])
def test_a_malformed_database_url_is_one_line_without_traceback_or_password(small_corpus: Path, url: str) -> None:
    for cmd in (["search", "rockets"], ["run", "--platform", "console"]):
        done = run_cli("--corpus", str(small_corpus), *cmd, env={"DATABASE_URL": url})
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("quotebot: setting error: DATABASE_URL: "), done.stderr
        assert "hunter2" not in done.stderr + done.stdout


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp, IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


async def _start_web(command: str, port: int, api_url: str, corpus: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "HOST"))}
    env.update(PATH=f"{QUOTEBOT.parent}{os.pathsep}{env.get('PATH', '')}", PORT=str(port), QUOTEBOT_CORPUS=str(corpus),
               SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=api_url)
    # as a PaaS runs a Procfile line: through a shell, here in a process group of its own so it stops as one
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec("sh", "-c", command, cwd=str(ROOT), env=env,
                                                    start_new_session=True, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=out, stderr=out)


async def _wait_healthy(proc: asyncio.subprocess.Process, port: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                pytest.fail(f"the web process exited with {proc.returncode}: {log.read_text(errors='replace')}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail("the web process did not answer /healthz")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def _procfile_command(kind: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == kind:
            return command.strip()
    raise AssertionError(f"Procfile has no {kind}: process")


async def test_procfile_web_listens_on_all_interfaces_and_a_plain_run_on_loopback_only(
    small_corpus: Path, tmp_path: Path
) -> None:
    web_command = _procfile_command("web")
    api = SlackApiServer()
    await api.start()
    try:
        port = free_port()
        proc = await _start_web(web_command, port, api.api_url, small_corpus, tmp_path / "web.log")
        try:
            await _wait_healthy(proc, port, tmp_path / "web.log")
            assert _listening_addresses(port) == {"0.0.0.0"}
        finally:
            await _stop(proc)
        # the same command without the Procfile's HOST: the default keeps a local run off the network
        plain = " ".join(w for w in shlex.split(web_command) if not w.startswith("HOST="))
        port = free_port()
        proc = await _start_web(plain, port, api.api_url, small_corpus, tmp_path / "plain.log")
        try:
            await _wait_healthy(proc, port, tmp_path / "plain.log")
            assert _listening_addresses(port) == {"127.0.0.1"}
        finally:
            await _stop(proc)
    finally:
        await api.stop()


def test_tasks_test_fails_when_pytest_collects_no_test_and_passes_other_codes_through() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        import tasks
    finally:
        sys.path.remove(str(ROOT))
    python = Path(sys.executable)
    selected = "tests/unit/test_settings_validation.py::test_defer_after_inside_the_window_is_taken"
    assert tasks.run_tests([selected, "-q", "-p", "no:cacheprovider"], python=python) == 0
    assert tasks.run_tests([selected, "-q", "-p", "no:cacheprovider", "-k", "no_such_test"], python=python) == 1
    assert tasks.run_tests(["tests/no/such/folder", "-q", "-p", "no:cacheprovider"], python=python) == 4


def test_postgres_tests_fail_rather_than_skip_when_the_server_cannot_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("QUOTEBOT_TEST_POSTGRES_URL", "QUOTEBOT_TEST_DATABASE_URL")}
    env["QUOTEBOT_TEST_POSTGRES_BIN"] = str(tmp_path)  # no PostgreSQL binaries there
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/integration/test_daily_store.py", "-k", "postgresql and start_up_creates_the_schema"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stdout
    assert "skipped" not in done.stdout
    assert "1 error" in done.stdout
    assert f"no PostgreSQL server for the tests: {tmp_path / 'initdb'} is missing" in done.stdout
