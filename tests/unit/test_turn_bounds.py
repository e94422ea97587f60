"""Turn bounds found for a whole index at once agree with a plain scan, window by window."""

from __future__ import annotations

import random

from retrieval.rank import TURN_REACH, interjects, turn_end, turn_start
from retrieval.search import open_searcher

WORDS = "we talked about the garden and the bakery and the long winter on the coast".split()


def _scan_end(index, doc, limit):
    a = index.a
    for j in range(doc + 1, min(index.size, doc + TURN_REACH)):
        if a["p_src"][j] != a["p_src"][doc]:
            return None
        if a["p_speaker"][j] != a["p_speaker"][doc] and not interjects(index, j, limit):
            return int(a["p_cstart"][j])
    return None


def _scan_start(index, doc, limit):
    a = index.a
    lo = max(0, doc - TURN_REACH)
    for j in range(doc - 1, lo - 1, -1):
        differs = a["p_src"][j] != a["p_src"][doc] or a["p_speaker"][j] != a["p_speaker"][doc]
        if differs and not interjects(index, j, limit):
            return int(a["p_cstart"][j + 1])
    return int(a["p_cstart"][lo])


def test_turn_bounds_agree_with_a_scan_over_every_window(tmp_path):
    rng = random.Random(7)
    folder = tmp_path / "pod"
    folder.mkdir()
    for ep in range(3):  # several sources: a turn never runs into the next one
        cues = []
        for i in range(160):
            who = rng.choice(["Ann", "Bob", "Ann", "Cy"]) if rng.random() < 0.4 else None
            words = rng.choice([1, 2, 3, 12, 40])  # short echoes and long turns
            text = " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."
            cues.append(f"{i + 1}\n00:{i // 60:02d}:{i % 60:02d},000 --> 00:{i // 60:02d}:{i % 60:02d},900\n"
                        f"{who + ': ' if who else ''}{text}\n")
        (folder / f"ep{ep}.srt").write_text("\n".join(cues), encoding="utf-8")
    # and one long monologue: its turn reaches further than the bounds look
    monologue = [f"{i + 1}\n00:{i // 60:02d}:{i % 60:02d},000 --> 00:{i // 60:02d}:{i % 60:02d},900\n"
                 f"{'Bob: ' if i in (0, 299) else 'Ann: ' if i == 1 else ''}"
                 f"{' '.join(rng.choice(WORDS) for _ in range(14)).capitalize()}.\n" for i in range(300)]
    (folder / "talk.srt").write_text("\n".join(monologue), encoding="utf-8")
    index = open_searcher(folder, None, tmp_path / "ix").index
    speakers = set(index.a["p_speaker"].tolist())
    assert len(speakers) >= 3 and index.size > 200
    for limit in (0, 5):
        echoes = sum(interjects(index, d, limit) for d in range(index.size))
        assert limit == 0 or echoes > 0  # the sample has listeners' short interjections
        for d in range(index.size):
            assert turn_end(index, d, limit) == _scan_end(index, d, limit), (d, limit)
            assert turn_start(index, d, limit) == _scan_start(index, d, limit), (d, limit)
