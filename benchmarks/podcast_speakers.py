"""Speaker check on the Virtual Coffee podcast SRTs (speakers only as ``Name:`` text), with no manifest.

Copies ``../shared/peer-formats/vc-podcast-transcripts__*.srt`` renamed into a temporary
folder, runs ``quotebot search --json`` (lexical, own index folder) for a fixed list of
topics, and checks the first 50 hits against the files' own ``Name:`` labels, read here
independently of quotebot's parser:

- the hit's ``speaker`` is the person whose words open the quote (named in full or by first name);
- every word of the quote is that person's (a quote that runs on into the next turn is
  counted apart: the shown run-on text is the search side's);
- no quote carries a ``Name:`` label in its text.

    .venv/bin/python benchmarks/podcast_speakers.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "peer-formats"
TOPICS = [
    "open source", "first developer job", "mentoring", "imposter syndrome", "burnout", "javascript",
    "accessibility", "career change", "bootcamp", "remote work", "public speaking", "writing blog posts",
    "job interviews", "pair programming", "testing", "documentation", "community", "lightning talks",
    "react", "hiring", "learning in public", "side projects", "conference", "freelancing", "pull requests",
    "code review", "salary negotiation", "design systems", "parenting", "hackathon",
]
SAMPLE = 50
_LABEL = re.compile(r"^([A-Z][\w'.-]*(?: [A-Z][\w'.-]*){0,3}):\s+")
_TIMING = re.compile(r"-->")


def labelled_text(path: Path) -> tuple[str, list[str | None]]:
    """The file's cue words joined by spaces with labels removed, and the speaker of each character."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    cues: list[list[str]] = []
    for i, line in enumerate(lines):
        if _TIMING.search(line):
            cues.append([])
        elif cues and line.strip() and not (line.strip().isdigit() and i + 1 < len(lines)
                                            and _TIMING.search(lines[i + 1])):
            cues[-1].append(line.strip())
    names: dict[str, int] = {}
    for cue in cues:
        m = _LABEL.match(" ".join(cue))
        if m:
            names[m[1]] = names.get(m[1], 0) + 1
    text_parts: list[str] = []
    owners: list[str | None] = []
    speaker: str | None = None
    for cue in cues:
        body = " ".join(" ".join(cue).split())
        m = _LABEL.match(body)
        # a label used twice, or a full name used once whose first name is such a label
        if m and (names.get(m[1], 0) >= 2 or names.get(m[1].split()[0], 0) >= 2):
            speaker = m[1]
            body = body[m.end():]
        if not body:
            continue
        if text_parts:
            text_parts.append(" ")
            owners.append(speaker)
        text_parts.append(body)
        owners.extend([speaker] * len(body))
    return "".join(text_parts), owners


def main() -> int:
    files = sorted(SHARED.glob("vc-podcast-transcripts__*.srt"))
    if not files:
        print(f"no Virtual Coffee files in {SHARED}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="qb-vc-"))
    try:
        corpus = work / "vc"
        corpus.mkdir()
        for f in files:
            shutil.copy(f, corpus / f"vc_{f.name.split('__', 1)[1]}")
        env = {**os.environ, "QUOTEBOT_CORPUS": str(corpus), "QUOTEBOT_INDEX_DIR": str(work / "idx"),
               "QUOTEBOT_SEARCH_MODE": "lexical", "HF_HUB_OFFLINE": "1", "QUOTEBOT_DOTENV": ""}
        run = subprocess.run([sys.executable, "-m", "bot.cli", "search", "--json", "--top-k", "5"], cwd=ROOT,
                             input="\n".join(TOPICS) + "\n", capture_output=True, text=True, env=env, timeout=900)
        if run.returncode != 0:
            print(run.stderr[-2000:], file=sys.stderr)
            return 2
        hits = []
        seen = set()
        for line in run.stdout.splitlines():
            for r in json.loads(line)["results"]:
                key = (r["source_id"], r["text"][:80])
                if key not in seen:
                    seen.add(key)
                    hits.append(r)
        hits = hits[:SAMPLE]
        truth = {}
        right = wrong = mixed = labels = unlocated = 0
        problems = []
        for r in hits:
            sid = r["source_id"]
            if sid not in truth:
                truth[sid] = labelled_text(corpus / f"{sid}.srt")
            text, owners = truth[sid]
            quote = " ".join(r["text"].replace("…", " ").split())
            at = text.find(quote)
            if at < 0:
                at = text.find(quote[:60])
            if at < 0:
                unlocated += 1
                problems.append(f"  not found in {sid}: {quote[:70]!r}")
                continue
            span = owners[at: at + len(quote)]
            first = owners[at]
            if r["speaker"] == first or (first and r["speaker"] and r["speaker"].split()[0] == first.split()[0]):
                right += 1
            else:
                wrong += 1
                problems.append(f"  wrong speaker {r['speaker']!r} (words are {first!r}) in {sid}: {quote[:70]!r}")
            if len(set(span)) > 1:
                mixed += 1
                problems.append(f"  quote crosses a turn {sorted(set(span), key=str)} in {sid}: {quote[:70]!r}")
            if any(_LABEL.match(piece) for piece in re.split(r"(?<=[.!?])\s+", r["text"])
                   if _LABEL.match(piece) and _LABEL.match(piece)[1] in {o for o in owners if o}):
                labels += 1
                problems.append(f"  'Name:' label inside the quote in {sid}: {quote[:70]!r}")
        print(f"{len(hits)} hits over {len(TOPICS)} topics, {len(files)} files, no manifest")
        print(f"speaker right            {right:3d}")
        print(f"speaker wrong            {wrong:3d}")
        print(f"quote crosses a turn     {mixed:3d}  (run-on text past the passage: the search side)")
        print(f"'Name:' label in quote   {labels:3d}")
        print(f"quote not located        {unlocated:3d}")
        print(f"hits with no speaker     {sum(1 for r in hits if not r['speaker']):3d}")
        for p in problems:
            print(p)
        return 0 if wrong == 0 and labels == 0 and unlocated == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
