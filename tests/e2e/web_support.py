"""Helpers for the web page's browser tests: Debian's Chromium + chromedriver (installed with apt-get when
missing), Selenium sessions with and without JavaScript, and ``quotebot run --platform web`` as a process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "web"
QUOTEBOT = Path(sys.executable).with_name("quotebot")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
APT_INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1200,1400",
    # only the bot under test is reachable: pressing Play never contacts YouTube from a test
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def ensure_chromium() -> None:
    """Make sure Debian's chromium and chromium-driver are installed (apt-get as root, or through sudo).

    Fails (never skips) with the command to run when they cannot be installed here.
    """
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    prefix: list[str] = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else [])
    if os.geteuid() != 0 and not prefix:
        raise RuntimeError(f"Chromium is missing and this user cannot install it: run `sudo {' '.join(APT_INSTALL)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], APT_INSTALL):
        done = subprocess.run([*prefix, *cmd], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr[-1500:]}")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise RuntimeError(f"{' '.join(APT_INSTALL)} did not install {CHROMIUM} and {CHROMEDRIVER}")


def browser(*, javascript: bool = True):
    """A headless Chromium session through the system chromedriver (Selenium Manager never runs)."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium must not look for or download drivers and browsers
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='qb-chromium-')}")
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WebBot:
    """``quotebot run --platform web`` (plus any other platforms) on a free loopback port."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ("web",)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "quotebot.log"

    def start(self, timeout: float = 90.0) -> WebBot:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "QUOTEBOT_"))}
        env.update({
            "QUOTEBOT_WEB": "true",
            "QUOTEBOT_CORPUS": str(CORPUS),
            "QUOTEBOT_INDEX_DIR": str(self.workdir / "index"),
            "QUOTEBOT_SEARCH_MODE": "lexical",
            "QUOTEBOT_DOTENV": "",
            "QUOTEBOT_RATE_PER_MINUTE": "600",
            "QUOTEBOT_RATE_BURST": "200",
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'state.sqlite3'}",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.env)
        args = [str(QUOTEBOT), "run"]
        for p in self.platforms:
            args += ["--platform", p]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"quotebot exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"quotebot did not answer /healthz within {timeout:.0f} s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
