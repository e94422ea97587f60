"""Transcript conformance: every file of ../shared/peer-formats through quotebot's parsers.

Prints one row per source family: files indexed, rejected with a reason, wrong, crashed.
"Wrong" means: a file a user would expect to index was rejected, a file that must be
refused was indexed, or indexed text breaks a check (markup, timing lines or ``Name:``
labels left in the words, rolling captions repeated, speakers missing where the file
names them). For Mozilla vtt.js's suite, cue text and times must equal the ``.json`` of
cues vtt.js expects, except for the deliberate differences listed at the end.

    .venv/bin/python benchmarks/conformance.py [--show FAMILY] [--verbose]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrieval.formats import SUFFIXES, TranscriptError, parse_file  # noqa: E402
from retrieval.formats.speakers import label_of  # noqa: E402

SHARED = ROOT.parent / "shared" / "peer-formats"

# Files that hold no transcript or are broken on purpose: refusing them (with a reason) is right.
MUST_REFUSE = {
    "webvtt-py__empty.vtt": "no cues",
    "webvtt-py__no_captions.vtt": "header only",
    "webvtt-py__invalid_format1.srt": "an index and nothing else",
    "webvtt-py__invalid_format2.srt": "one line of text, no timing",
    "webvtt-py__invalid_format3.srt": "index and text, no timing",
    "webvtt-py__invalid_format4.srt": "text before the first timing line",
    "webvtt-py__invalid_format.sbv": "one line of text, no timing",
    "webvtt-py__invalid_timeframe.vtt": "timing '00:00:1d.890' (words would be lost)",
    "webvtt-py__invalid_timeframe.sbv": "timing '0:00:13.f89' (words would be lost)",
    "pysrt__invalid.srt": "not a subtitle file",
    "DERIVED__zero.srt": "0-byte file",
    "DERIVED__zero.json": "0-byte file",
    "DERIVED__zero.txt": "0-byte file",
    "youtube-transcript-api__transcript.xml.static": "YouTube timedtext XML, not a supported format",
}
# Either outcome is right: a recogniser run on silence (may hold a hallucinated phrase or nothing).
EITHER = {"whisper-timestamped__medium_auto__empty.mp3.words.json",
          "whisper-timestamped__tiny_fr__empty.mp3.words.json"}
# Files whose words carry speakers in the file: each must come out with speakers.
SPEAKERS_EXPECTED = re.compile(
    r"^(vc-podcast-transcripts__|DERIVED__vc_8_5|DERIVED__whisperx|podcast-namespace__example\.(json|vtt|srt|html)|"
    r"gsf-podcast|DERIVED__txt_tag_first|DERIVED__txt_dash_tag_first)"
)
# Deliberate differences from vtt.js, by file, with the reason.
VTTJS_DIFFERENCES: dict[str, str] = {
    "vtt.js__cue-times__minimum-spots-over-sixty.vtt": "'120:00.000' is read as 120 minutes (MM:SS.mmm with long "
                                                       "minutes); vtt.js reads 120 hours",
    "vtt.js__integration__id.vtt": "a block whose first line is a bad timing line and whose second line is a "
                                   "good one: the WebVTT spec re-reads the second line as a new cue ('Test'), "
                                   "vtt.js drops it",
}
REFUSE_REASON = {
    "timing": "a cue timing line that does not parse is refused with its line, not dropped with its words",
    "ends-before": "a cue that ends before it starts is refused with its line (its words would be lost)",
}
_LEFTOVER = re.compile(r"-->|</?(?:v|c|i|b|u|ruby|rt|lang|font)[ .>]|\{\\|\\[Nh]|^WEBVTT|\*\*")


@dataclass
class Outcome:
    family: str
    name: str
    status: str  # indexed | rejected | wrong | crash
    detail: str = ""


def family_of(name: str) -> str:
    repo, _, rest = name.partition("__")
    if repo == "vtt.js":
        return "vtt.js/" + rest.split("__")[0]
    return repo


def vttjs_expected(json_path: Path) -> list[tuple[float, float, str]]:
    data = json.loads(json_path.read_text(encoding="utf-8"))
    out = []
    for cue in data.get("cues", []):
        text = " ".join(_visible(cue.get("text", "")).split())
        if text:
            out.append((round(float(cue["startTime"]), 3), round(float(cue["endTime"]), 3), text))
    return out


def _visible(raw: str) -> str:
    """vtt.js's raw cue text as it reads on screen: tags (a '<' without '>' runs to the end) removed."""
    out, pos = [], 0
    while pos < len(raw):
        lt = raw.find("<", pos)
        if lt < 0:
            out.append(raw[pos:])
            break
        out.append(raw[pos:lt])
        gt = raw.find(">", lt + 1)
        pos = gt + 1 if gt >= 0 else len(raw)
    return html.unescape("".join(out)).replace("\u200e", "").replace("\u200f", "").replace("\xa0", " ")


def ours_as_cues(t) -> list[tuple[float, float, str]]:
    cues: list[list] = []
    for u in t.utterances:
        key = (round(u.start, 3), round(u.end, 3))
        if cues and cues[-1][0] == key:
            cues[-1][1].append(u.text)
        else:
            cues.append([key, [u.text], u.line])
        cues[-1][2] = u.line
    return [(a, b, " ".join(" ".join(texts).split())) for (a, b), texts, _ in cues]


def check(path: Path) -> Outcome:
    name = path.name
    fam = family_of(name)
    expected_json = path.with_suffix(".json") if fam.startswith("vtt.js/") and path.suffix == ".vtt" else None
    if path.suffix.lower() not in SUFFIXES:
        status = "rejected" if name in MUST_REFUSE else "wrong"
        return Outcome(fam, name, status, f"not a transcript format ({path.suffix}): listed as unsupported")
    try:
        t = parse_file(path, "x")
    except TranscriptError as e:
        reason = e.reason
        if name in MUST_REFUSE or name in EITHER:
            return Outcome(fam, name, "rejected", reason)
        if expected_json is not None and expected_json.is_file():
            if not vttjs_expected(expected_json):
                return Outcome(fam, name, "rejected", reason)  # vtt.js finds no cue text either
            for key, why in REFUSE_REASON.items():
                timing = key == "timing" and "cue timing" in reason
                if timing or (key == "ends-before" and "before it starts" in reason):
                    VTTJS_DIFFERENCES[name] = why
                    return Outcome(fam, name, "rejected", reason)
            return Outcome(fam, name, "wrong", f"vtt.js parses it, we refuse: {reason}")
        if fam.startswith("vtt.js/"):
            return Outcome(fam, name, "rejected", reason)  # vtt.js keeps no expected cues for it
        return Outcome(fam, name, "wrong", f"refused: {e}")
    except Exception as e:  # a crash is what this measures
        return Outcome(fam, name, "crash", f"{type(e).__name__}: {e}")
    if name in MUST_REFUSE:
        return Outcome(fam, name, "wrong", f"indexed, but {MUST_REFUSE[name]}")
    for u in t.utterances:
        if _LEFTOVER.search(re.sub(r"`[^`]*`", "", u.text)):  # markup quoted as code in prose is words
            return Outcome(fam, name, "wrong", f"line {u.line}: markup or timing left in the words: {u.text[:60]!r}")
    texts = [u.text for u in t.utterances]
    if any(texts[i] == texts[i + 1] == texts[i + 2] and len(texts[i]) > 20 for i in range(len(texts) - 2)):
        return Outcome(fam, name, "wrong", "a line repeated three times in a row (rolling captions?)")
    if t.speakers:
        for u in t.utterances:
            f = label_of(u.text)
            if f and f[0] in t.speakers:
                return Outcome(fam, name, "wrong", f"line {u.line}: 'Name:' label left in the words")
    if SPEAKERS_EXPECTED.match(name):
        share = sum(1 for u in t.utterances if u.speaker) / len(t.utterances)
        if share < 0.9:
            return Outcome(fam, name, "wrong", f"only {share:.0%} of utterances have a speaker")
    raw = path.read_bytes().decode("utf-8", "replace").casefold()
    invented = [sp for sp in t.speakers if sp.casefold() not in raw]
    if invented:
        return Outcome(fam, name, "wrong", f"speakers {invented[:3]} do not appear in the file")
    if expected_json is not None and expected_json.is_file():
        want = vttjs_expected(expected_json)
        got = ours_as_cues(t)
        if got != want:
            if name in VTTJS_DIFFERENCES:
                return Outcome(fam, name, "indexed", VTTJS_DIFFERENCES[name])
            return Outcome(fam, name, "wrong", f"cues differ from vtt.js: ours {got[:2]} vs {want[:2]}")
    return Outcome(fam, name, "indexed", f"{len(t.utterances)} utterances")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", help="list every file of families starting with this")
    ap.add_argument("--verbose", action="store_true", help="list every file that is wrong, crashed or rejected")
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"no conformance corpus at {SHARED}", file=sys.stderr)
        return 2
    files = sorted(p for p in SHARED.iterdir() if p.is_file() and p.name != "SOURCES.md"
                   and not (p.name.startswith("vtt.js__") and p.suffix == ".json"))
    t0 = time.perf_counter()
    outcomes = [check(p) for p in files]
    elapsed = time.perf_counter() - t0
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for o in outcomes:
        table[o.family][o.status] += 1
    cols = ("indexed", "rejected", "wrong", "crash")
    print(f"{'family':40} " + " ".join(f"{c:>8}" for c in cols) + f" {'files':>6}")
    for fam in sorted(table):
        row = table[fam]
        print(f"{fam:40} " + " ".join(f"{row[c]:8d}" for c in cols) + f" {sum(row.values()):6d}")
    totals = {c: sum(r[c] for r in table.values()) for c in cols}
    print(f"{'TOTAL':40} " + " ".join(f"{totals[c]:8d}" for c in cols) + f" {len(outcomes):6d}")
    print(f"\n{len(outcomes)} files in {elapsed:.1f} s")
    for o in outcomes:
        shown = args.show and o.family.startswith(args.show)
        if shown or o.status in ("wrong", "crash") or (args.verbose and o.status == "rejected"):
            print(f"  {o.status:8} {o.name}: {o.detail}")
    if VTTJS_DIFFERENCES:
        print("\nDeliberate differences from vtt.js:")
        for name, why in sorted(VTTJS_DIFFERENCES.items()):
            print(f"  {name}: {why}")
    return 1 if totals["wrong"] or totals["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
