"""Whether the best candidate answers the question at all, or the search should come back empty.

Two general signals, no per-question rules:

- **coverage**: the share of the question's content weight (idf of each content word) that
  the best moment (its window and the windows beside it) contains. A word the corpus never
  uses counts with the highest idf the corpus has, so "does he play chess" over a corpus
  without chess covers little however often "play" occurs. A stand-in for an unknown word
  (``retrieval.fuzzy``) counts with its weight.
- **cosine** (hybrid mode): how similar the best moment is to the question, compared with
  the similarity the question has to the corpus at large (``Ranked.stats``): an answer
  stands out from the bulk of passages.

A moment answers when it covers most of the question, or when it covers some of it and is
clearly similar, or when it is very similar though it shares few words (a paraphrase).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from retrieval.analyze import CJK_RANGES
from retrieval.index import Index
from retrieval.rank import events

if TYPE_CHECKING:
    from retrieval.search import QueryPlan, Ranked


_CJK = re.compile(f"[{CJK_RANGES}]")
MISSING_BIGRAM_SHARE = 0.2  # weight of a Chinese bigram the corpus lacks, against an unknown word


@dataclass(frozen=True, slots=True)
class AbstainParams:
    enabled: bool = True
    min_coverage: float = 0.1  # lexical mode: a moment must hold this share of the question's weight
    # hybrid mode: cosine above the corpus's typical cosine for this question, in its standard deviations
    strong_z: float = 6.0  # enough on its own
    weak_z: float = 3.5  # enough with some coverage
    weak_coverage: float = 0.25


@dataclass(frozen=True, slots=True)
class Evidence:
    """The signals about one candidate moment."""

    coverage: float
    cosine: float | None
    z: float | None


def moment_coverage(index: Index, plan: QueryPlan, doc: int) -> float:
    """Share of the question's content weight found in window ``doc`` or the windows next to it."""
    n = max(1, index.size)
    missing_idf = math.log(1.0 + (n + 0.5) / 0.5)
    idf = index.a["idf"]
    q = list(dict.fromkeys(plan.ids))
    # an unknown word and its stand-ins share one slot: the best stand-in found counts
    total = float(sum(float(idf[t]) for t in q if t not in plan.weights))
    # A Chinese bigram the corpus lacks mostly straddles two words of the question (about
    # half of a run's bigrams do), so it counts for little.
    n_missing = sum(MISSING_BIGRAM_SHARE if _CJK.match(m) else 1.0 for m in plan.missing)
    total += missing_idf * (n_missing + len({v.word for v in plan.variants}))
    if total <= 0:
        return 0.0
    src = index.a["p_src"]
    docs = [d for d in (doc - 1, doc, doc + 1) if 0 <= d < index.size and src[d] == src[doc]]
    if not q:
        return 0.0
    ev = events(index, np.asarray(docs, np.int64), q, 1)
    present = set(ev.slot.tolist())
    got = sum(float(idf[t]) for i, t in enumerate(q) if i in present and t not in plan.weights)
    best_variant: dict[str, float] = {}
    slot = {t: i for i, t in enumerate(q)}
    for v in plan.variants:
        t = index.vocab[v.term]
        if slot[t] in present:
            best_variant[v.word] = max(best_variant.get(v.word, 0.0), v.weight)
    got += missing_idf * sum(best_variant.values())
    return got / total


def evidence(index: Index, plan: QueryPlan, ranked: Ranked, doc: int) -> Evidence:
    """Coverage and (in hybrid mode) cosine evidence for candidate window ``doc``."""
    cov = moment_coverage(index, plan, doc)
    if ranked.cosine is None:
        return Evidence(cov, None, None)
    at = np.flatnonzero(ranked.cand == doc)
    cos = float(ranked.cosine[at[0]]) if len(at) else float(ranked.stats.get("mean", 0.0))
    sd = ranked.stats.get("std", 0.0)
    z = (cos - ranked.stats.get("mean", 0.0)) / sd if sd > 0 else 0.0
    return Evidence(cov, cos, z)


def answers(index: Index, plan: QueryPlan, ranked: Ranked, doc: int, params: AbstainParams) -> bool:
    """Whether window ``doc`` (the best candidate) answers the question."""
    if not params.enabled:
        return True
    ev = evidence(index, plan, ranked, doc)
    if ev.z is None:
        return ev.coverage >= params.min_coverage
    return ev.z >= params.strong_z or (ev.z >= params.weak_z and ev.coverage >= params.weak_coverage)
