"""The console on a real terminal: ``quotebot run`` (and ``python3 tasks.py run``) driven through a pty.

Ctrl-C at the prompt ends the bot at once and without a traceback; arrow keys edit the line and walk a
history kept between runs; answers wrap at the terminal width between words, a URL longer than a line
stays whole on a line of its own; after ``more`` the quotes are numbered 4–6 and the answer says what
``more`` and ``context N`` do.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parents[2]
QUOTEBOT = Path(sys.executable).with_name("quotebot")
COLUMNS = 40
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
LONG_URL = "https://www.youtube.com/watch?v=abcdefghijk"  # with &t=…s longer than one 40-column line

SENTENCES = [
    "The lighthouse keeper climbed the spiral staircase every single evening before sunset.",
    "Our lighthouse lamp used whale oil until the keepers switched over to kerosene.",
    "A lighthouse needs its lens polished daily or the beam loses half its reach.",
    "Storms shook the lighthouse tower but the granite walls never cracked at all.",
    "The keeper wrote every passing ship in the lighthouse logbook with its flag.",
    "Fog signals helped when the lighthouse beam could not pierce the thick grey air.",
    "The last lighthouse keeper left the island when the lamp became automatic.",
]
FILLER = "Then we spoke for a while about gardens, bicycles, bread, weather, trains and the price of paint."


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    cues, t = [], 10
    for line in (x for s in SENTENCES for x in (s, *[FILLER] * 7)):
        cues.append(f"{len(cues) + 1}\n00:{t // 60:02d}:{t % 60:02d},000 --> 00:{(t + 9) // 60:02d}:"
                    f"{(t + 9) % 60:02d},000\n{line}\n")
        t += 10
    (folder / "lights.srt").write_text("\n".join(cues), encoding="utf-8")
    (folder / "corpus.toml").write_text(
        f'[[source]]\nfile = "lights.srt"\nid = "lights"\ntitle = "Lighthouse Stories"\nurl = "{LONG_URL}"\n',
        encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("console")
    write_corpus(tmp / "corpus")
    return tmp


def bot_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "QUOTEBOT_"))}
    env.pop("DATABASE_URL", None)
    env.update(QUOTEBOT_CORPUS=str(workdir / "corpus"), QUOTEBOT_INDEX_DIR=str(workdir / "state" / "index"),
               QUOTEBOT_DOTENV="", QUOTEBOT_SEARCH_MODE="lexical", HF_HUB_OFFLINE="1", TERM="xterm",
               LOG_LEVEL="WARNING", INPUTRC="/dev/null")
    return env


def spawn(workdir: Path, argv: list[str] | None = None, cwd: Path = ROOT) -> pexpect.spawn:
    argv = argv or [str(QUOTEBOT), "run"]
    child = pexpect.spawn(argv[0], argv[1:], cwd=str(cwd), env=bot_env(workdir), dimensions=(30, COLUMNS),
                          encoding="utf-8", codec_errors="replace", timeout=60)
    child.expect_exact("> ")
    return child


def screen(text: str) -> str:
    return ANSI.sub("", text)


def ask(child: pexpect.spawn, line: str) -> str:
    """Send one line; the text printed before the next prompt (escape codes removed)."""
    child.sendline(line)
    child.expect_exact("\n> ")
    return screen(child.before)


def ends_cleanly_on_ctrl_c(child: pexpect.spawn, log: list[str]) -> None:
    child.sendintr()
    child.expect(pexpect.EOF, timeout=20)  # no Enter needed
    child.close()
    output = screen("".join(log) + (child.before or ""))
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert child.exitstatus is not None or child.signalstatus is None


def test_ctrl_c_at_the_prompt_exits_without_enter_or_traceback(workdir):
    child = spawn(workdir)
    answer = ask(child, "lighthouse keeper")
    assert "Lighthouse Stories" in answer
    ends_cleanly_on_ctrl_c(child, [answer])
    assert child.exitstatus == 0


def test_ctrl_c_under_tasks_run_exits_cleanly(workdir, tmp_path):
    # tasks.py run in a folder of its own whose virtualenv is this one and already marked installed,
    # so it goes straight to starting the bot, exactly as on a machine where the virtualenv is ready.
    import hashlib

    (tmp_path / "tasks.py").write_bytes((ROOT / "tasks.py").read_bytes())
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'quotebot'\n")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for name in ("python", "quotebot"):
        (venv_bin / name).symlink_to(Path(sys.executable).with_name(name))
    digest = hashlib.sha256((tmp_path / "pyproject.toml").read_bytes()).hexdigest()[:16]
    (tmp_path / ".venv" / f".installed-{digest}").write_text("dev semantic")
    child = spawn(workdir, [shutil.which("python3") or sys.executable, str(tmp_path / "tasks.py"), "run"],
                  cwd=tmp_path)
    answer = ask(child, "lighthouse lamp")
    assert "Lighthouse Stories" in answer
    ends_cleanly_on_ctrl_c(child, [answer])


def test_arrow_keys_edit_the_line_and_history_survives_a_restart(workdir):
    child = spawn(workdir)
    # type "lighthose", go left one, insert the missing "u": readline edits the line in place
    child.send("lighthose lens")
    child.send("\x1b[D" * 7 + "u")
    child.send("\r")
    child.expect_exact("\n> ")
    answer = screen(child.before)
    assert "^[[D" not in answer
    assert "lens polished" in answer.replace("\n", " ").replace("  ", " ")
    child.sendline("quit")
    child.expect(pexpect.EOF)
    child.close()
    history = workdir / "state" / "console-history"
    assert "lighthouse lens" in history.read_text()
    again = spawn(workdir)
    again.send("\x1b[A\x1b[A")  # up arrow twice: the line before "quit" in the previous run
    again.send("\r")
    again.expect_exact("\n> ")
    assert "lens polished" in screen(again.before).replace("\n", " ").replace("  ", " ")
    again.sendline("quit")
    again.expect(pexpect.EOF)


def test_answers_wrap_between_words_and_keep_urls_whole(workdir):
    child = spawn(workdir)
    answer = ask(child, "lighthouse keeper")
    lines = answer.splitlines()
    words = set(" ".join([*SENTENCES, FILLER]).replace("“", " ").split())
    urls = [line.strip() for line in lines if "youtube.com" in line]
    assert urls and all(u.startswith(LONG_URL) and "&t=" in u for u in urls)  # whole, each on its own line
    for line in lines:
        if "youtube.com" in line:
            continue
        assert len(line) <= COLUMNS, line
        for word in re.findall(r"[A-Za-z]+", line):
            assert any(word in w for w in words) or word in ("Lighthouse", "Stories", "speaker", "not", "marked",
                                                             "Type", "more", "for", "the", "next", "three",
                                                             "context", "N", "to", "widen", "one"), word
    text = " ".join(line.strip() for line in lines)
    assert sum(s in text for s in SENTENCES) >= 2  # joined again, the wrapped quotes read as they were said
    child.sendline("quit")
    child.expect(pexpect.EOF)


def test_more_numbers_results_4_to_6_and_the_answer_says_more_exists(workdir):
    child = spawn(workdir)
    first = ask(child, "lighthouse")
    assert "Type more for the next three, context N to widen one." in " ".join(first.split())
    second = ask(child, "more")
    flat = " ".join(second.split())
    assert "Results 4–6" in flat
    assert [int(n) for n in re.findall(r"(?m)^(\d)\. “", second)] == [4, 5, 6]
    widened = ask(child, "context 5")
    assert "Pick a quote" not in widened and "Lighthouse Stories" in widened
    child.sendline("quit")
    child.expect(pexpect.EOF)


def write_large_corpus(folder: Path, files: int = 400, cues: int = 150) -> Path:
    """Enough transcripts that building their index takes several seconds."""
    folder.mkdir(parents=True)
    words = [*"lighthouse keeper storm granite lamp beam fog ship tide".split(), *(f"w{i}" for i in range(3000))]

    def at(t: int) -> str:
        return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d},000"

    for f in range(files):
        blocks = [f"{i + 1}\n{at(i * 10)} --> {at(i * 10 + 9)}\n"
                  + " ".join(words[(f * 7919 + i * 104729 + k * 31) % len(words)] for k in range(25)) + "\n"
                  for i in range(cues)]
        (folder / f"talk{f:03d}.srt").write_text("\n".join(blocks), encoding="utf-8")
    return folder


def test_ctrl_c_while_the_index_is_built_exits_at_once(tmp_path):
    write_large_corpus(tmp_path / "corpus")
    index = tmp_path / "state" / "index"
    child = pexpect.spawn(str(QUOTEBOT), ["run"], cwd=str(ROOT), env=bot_env(tmp_path), dimensions=(30, COLUMNS),
                          encoding="utf-8", codec_errors="replace", timeout=60)
    while not (index / "build.lock").exists():  # the build has begun
        assert child.isalive(), child.read()
        child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=0.05)
    ends_cleanly_on_ctrl_c(child, [])
    assert child.exitstatus == 130
    assert not (index / "current").exists()  # it stopped building instead of finishing first
