#!/usr/bin/env python3
"""Project tasks that need nothing but Python 3.11: ``python3 tasks.py run|test|lint|eval|bench``.

Each task creates (or refreshes) the local virtualenv ``.venv`` with the project installed,
then runs inside it. Extra arguments are passed on (``tasks.py test -k discord``).
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
# Installed before the semantic extra, so pip takes this CPU build rather than a CUDA one.
TORCH = "torch==2.13.0"


def _say(msg: str) -> None:
    print(f"tasks: {msg}", file=sys.stderr, flush=True)


def ensure_venv(extras: set[str]) -> None:
    """Create .venv and install the project (editable) with ``extras`` unless already done.

    A stamp records which extras were installed for which pyproject.toml, so a task
    reinstalls only when the project's dependencies changed or it needs more extras.
    """
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py runs under whatever python3 the user has)
        sys.exit("tasks: quotebot needs Python 3.11 or newer")
    if not PY.exists():
        _say("creating .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{hashlib.sha256((ROOT / 'pyproject.toml').read_bytes()).hexdigest()[:16]}"
    have = set(stamp.read_text().split()) if stamp.exists() else None
    if have is not None and extras <= have:
        return
    want = extras | (have or set())
    spec = f".[{','.join(sorted(want))}]" if want else "."
    _say(f"installing quotebot{spec[1:]} into .venv (the first run takes a minute)")
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, stdout=sys.stderr)
    if "semantic" in want:
        subprocess.run([*pip, TORCH], check=True, stdout=sys.stderr)
    subprocess.run([*pip, "-e", spec], check=True, cwd=ROOT, stdout=sys.stderr)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.write_text(" ".join(sorted(want)))


def main(argv: list[str]) -> int:
    task, args = (argv[0], argv[1:]) if argv else ("run", [])
    if task not in EXTRAS:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv(EXTRAS[task])
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if task == "test":
        env.setdefault("HF_HUB_OFFLINE", "1")  # the test model ships inside a package: never reach for a hub
    if task == "run":
        cmd = [str(BIN / "quotebot"), "run", *args]
    elif task == "test":
        cmd = [str(PY), "-m", "pytest", *args]
    elif task == "lint":
        cmd = [str(BIN / "ruff"), "check", ".", *args]
    elif task == "eval":
        shared = ROOT.parent / "shared" / "eval"
        cmd = [str(PY), str(shared / "score.py"), "--set", str(shared / "dev.jsonl"), *args, "--",
               str(BIN / "quotebot"), "search", "--json", "--top-k", "5"]
    else:
        cmd = [str(PY), str(ROOT / "benchmarks" / "search_speed.py"), *args]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
