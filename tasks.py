#!/usr/bin/env python3
"""Project tasks that need nothing but Python 3.11: ``python3 tasks.py run|test|lint|eval|bench``.

Each task creates (or refreshes) the local virtualenv ``.venv`` with the project installed,
then runs inside it. Extra arguments are passed on (``tasks.py test -k discord``).
``tasks.py test`` exits with pytest's exit code, except that a run that collected no test
(pytest's 5) exits 1: nothing checked is never a pass.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
EXTRAS = {"run": set(), "test": {"dev", "semantic"}, "lint": {"dev"}, "eval": set(), "bench": {"dev"}}
# Packages installed on their own before an extra, so pip keeps the version pinned here when it resolves the
# extra (torch: the CPU build rather than a CUDA one). An extra that needs none has no entry.
BEFORE_EXTRA: dict[str, tuple[str, ...]] = {"semantic": ("torch==2.13.0",)}
PYTEST_NO_TESTS = 5


def _say(msg: str) -> None:
    print(f"tasks: {msg}", file=sys.stderr, flush=True)


def install_steps(want: set[str]) -> list[tuple[str, list[str]]]:
    """The pip steps that install the project with extras ``want``: (what the user is told, pip arguments)."""
    spec = f".[{','.join(sorted(want))}]" if want else "."
    steps = [("upgrading pip", ["--upgrade", "pip"])]
    for extra in sorted(want):
        for package in BEFORE_EXTRA.get(extra, ()):
            steps.append((f"installing {package} (for the {extra} extra; a large download)", [package]))
    steps.append((f"installing quotebot{spec[1:]} and its dependencies (editable)", ["-e", spec]))
    return steps


def ensure_venv(extras: set[str]) -> None:
    """Create .venv and install the project (editable) with ``extras`` unless already done.

    A stamp records which extras were installed for which pyproject.toml, so a task
    reinstalls only when the project's dependencies changed or it needs more extras.
    Each step is announced; on a terminal pip shows its own progress, elsewhere (CI logs) it is quiet.
    """
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py runs under whatever python3 the user has)
        sys.exit("tasks: quotebot needs Python 3.11 or newer")
    if not PY.exists():
        _say(f"creating the virtualenv {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{hashlib.sha256((ROOT / 'pyproject.toml').read_bytes()).hexdigest()[:16]}"
    have = set(stamp.read_text().split()) if stamp.exists() else None
    if have is not None and extras <= have:
        return
    want = extras | (have or set())
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check"]
    if not sys.stderr.isatty():
        pip.append("-q")
    steps = install_steps(want)
    for n, (what, args) in enumerate(steps, 1):
        _say(f"[{n}/{len(steps)}] {what}")
        subprocess.run([*pip, *args], check=True, cwd=ROOT, stdout=sys.stderr)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.write_text(" ".join(sorted(want)))
    _say("virtualenv ready")


def task_env() -> dict[str, str]:
    """The environment a task runs in: the virtualenv's bin first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _call(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd`` in the project folder and return its exit code.

    Ctrl-C reaches the child too (same process group): the child decides how to stop, and this
    waits for it instead of killing it or printing a traceback of its own. A second Ctrl-C terminates it.
    """
    child = subprocess.Popen(cmd, cwd=ROOT, env=env)
    interrupts = 0
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts > 1:
                child.terminate()


def run_tests(args: list[str], python: Path = PY) -> int:
    """Run pytest from the project folder; its exit code, with "no test collected" turned into 1."""
    env = task_env()
    env.setdefault("HF_HUB_OFFLINE", "1")  # the test model ships inside a package: never reach for a hub
    code = _call([str(python), "-m", "pytest", *args], env)
    if code == PYTEST_NO_TESTS:
        _say("pytest collected no test (exit 5): nothing was checked, so this run fails")
        return 1
    return code


def main(argv: list[str]) -> int:
    task, args = (argv[0], argv[1:]) if argv else ("run", [])
    if task not in EXTRAS:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv(EXTRAS[task])
    if task == "test":
        return run_tests(args)
    if task == "run":
        cmd = [str(BIN / "quotebot"), "run", *args]
    elif task == "lint":
        cmd = [str(BIN / "ruff"), "check", ".", *args]
    elif task == "eval":
        shared = ROOT.parent / "shared" / "eval"
        cmd = [str(PY), str(shared / "score.py"), "--set", str(shared / "dev.jsonl"), *args, "--",
               str(BIN / "quotebot"), "search", "--json", "--top-k", "5"]
    else:
        cmd = [str(PY), str(ROOT / "benchmarks" / "search_speed.py"), *args]
    return _call(cmd, task_env())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
