"""Whether the best candidate answers the question at all, or the search should come back empty.

Three general signals, no per-question rules:

- **coverage**: the share of the question's content weight (idf of each content word) that
  the best moment (its window and the windows beside it) contains. A word the corpus never
  uses counts with the highest idf the corpus has, so "does he play chess" over a corpus
  without chess covers little however often "play" occurs. A stand-in for an unknown word
  (``retrieval.fuzzy``) counts with its weight.
- **cosine** (hybrid mode): how similar the best moment is to the question, against what
  unrelated questions reach in the same corpus with the same model: the best cosines of
  ``PROBES``, everyday questions a talk rarely answers, give the corpus's null distribution
  (so the thresholds follow the model's and the corpus's own scale).

- **topic gain** (hybrid mode): a question word the corpus never uses (whatever stands in for
  it) and that is rare in general English (wordfreq's Zipf scale, about three uses per million
  words: names and specialist terms) is likely the question's topic. The question is asked again
  with that word swapped for each of ``SUBSTITUTES``, unrelated things; when the best moment is
  no closer to the real question than to the median of those, it is not about that topic ("what did he
  say about the hyperloop" answered by a passage as close to "... about the saxophone"). A
  mostly-Chinese passage read by the second model (``retrieval.cross_script``) is measured with it.

Hybrid mode: a question whose topic gain is not positive gets nothing. Otherwise something
answers when the best cosine of any candidate, calibrated to the null as (cos - null) /
(1 - null) with null the probes' median, clearly beats the typical unrelated question
(``min_similarity``), or when the best moment holds most of the question's weight
(``answer_coverage``): both signals must say "nothing" before the search comes back empty.
The thresholds were set on the probes (negatives) and on tune questions written for each
corpus (positives), so that nearly no answerable tune question goes unanswered.

Lexical mode: a moment answers when it holds at least a tenth of the question's weight, and
not when every word it matched is a stand-in while another question word matches nothing at
all ("xyzzy plugh" is no question about plugs).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from retrieval.index import Index
from retrieval.rank import events
from retrieval.text import CJK

if TYPE_CHECKING:
    from collections.abc import Callable

    from retrieval.search import QueryPlan, Ranked


_CJK = CJK
MISSING_BIGRAM_SHARE = 0.2  # weight of a Chinese bigram the corpus lacks, against an unknown word


@dataclass(frozen=True, slots=True)
class AbstainParams:
    enabled: bool = True
    min_coverage: float = 0.1  # lexical mode: a moment must hold this share of the question's weight
    # Hybrid mode, against the best cosines that unrelated probe questions (PROBES) reach in
    # this corpus with this model: clearly above nearly all of them is enough on its own ...
    strong_quantile: float = 0.9
    # ... and above the typical one is enough when the moment holds some of the question's words.
    weak_quantile: float = 0.5
    margin: float = 0.05
    weak_coverage: float = 0.3
    # Compare the best cosine of any candidate with the probes' (as the null is measured),
    # rather than the cosine of the moment that ranks first.
    best_cosine: bool = True
    # "calibrated": the rule above with min_similarity / answer_coverage; "quantiles": the
    # strong / weak probe quantiles with margin and weak_coverage.
    rule: str = "calibrated"
    min_similarity: float = 0.1
    answer_coverage: float = 0.5
    # Topic gain: words rarer than this Zipf frequency (wordfreq) count as a question's topic,
    # at most ``topic_words`` of them; the gain (calibrated cosine) must exceed ``topic_margin``.
    rare_zipf: float = 3.5
    topic_words: int = 2
    topic_margin: float = 0.0


# Questions about everyday topics that talks and interviews rarely cover, in many fields:
# the best cosine each reaches in a corpus is what "unrelated" looks like there. A corpus
# that does cover one or two of them moves the upper quantiles little.
PROBES = (
    "what is the boiling point of water at high altitude",
    "how long should I roast a chicken in the oven",
    "which team won the football league last season",
    "how do I get red wine stains out of a carpet",
    "what is the best fertiliser for roses",
    "how often should a cat be taken to the vet",
    "what are the symptoms of the flu",
    "how do I change a flat tyre on a bicycle",
    "what is the capital city of australia",
    "which shoes are best for running a marathon",
    "how do you knit a scarf for beginners",
    "what causes the tides in the ocean",
    "how do I tune a guitar by ear",
    "what is a good recipe for banana bread",
    "how much water should a houseplant get",
    "when was the great wall of china built",
    "how do I unclog a kitchen sink",
    "what is the difference between a crocodile and an alligator",
    "how do you play the card game bridge",
    "what should I pack for a ski holiday",
)


# The same kind of questions in Chinese: with a multilingual model, the null of Chinese
# questions against English passages (and of English ones against Chinese passages) differs
# from the null within one language.
PROBES_ZH = (
    "高海拔地区水的沸点是多少", "烤鸡要在烤箱里烤多久", "上个赛季哪支球队赢得了足球联赛", "怎么去掉地毯上的红酒渍",
    "玫瑰用什么肥料最好", "猫多久应该去看一次兽医", "流感有哪些症状", "怎么给自行车换轮胎", "澳大利亚的首都是哪个城市",
    "跑马拉松穿什么鞋最好", "初学者怎么织围巾", "海洋潮汐是什么引起的", "怎么靠耳朵给吉他调音",
    "香蕉面包的好做法是什么",
    "室内植物应该浇多少水", "长城是什么时候建造的", "厨房水槽堵了怎么办", "鳄鱼和短吻鳄有什么区别", "桥牌怎么玩",
    "去滑雪度假应该带什么",
)


# Unrelated things a question could have named instead of its rare topic word (topic gain),
# one from each of ten fields, so that no corpus suits two of them.
SUBSTITUTES = ("saxophone", "alligator", "croquet", "origami", "lasagna", "tulip", "volcano", "umbrella",
               "chandelier", "tuxedo")

_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def rare_words(words: tuple[str, ...] | list[str], max_zipf: float) -> list[str]:
    """Those of ``words`` (Latin script) rarer in general English than ``max_zipf``; none
    when the ``wordfreq`` package is not installed."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        return []
    return [w for w in dict.fromkeys(words) if _LATIN_WORD.fullmatch(w) and zipf_frequency(w.lower(), "en") < max_zipf]


@dataclass(frozen=True, slots=True)
class Evidence:
    """The signals about one candidate moment."""

    coverage: float
    cosine: float | None
    z: float | None
    best_cosine: float | None = None  # the highest cosine of any candidate (what the probes' null measures)


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
    cos = float(ranked.cosine[at[0]]) if len(at) else 0.0
    sd = ranked.stats.get("std", 0.0)
    z = (cos - ranked.stats.get("mean", 0.0)) / sd if sd > 0 else 0.0
    return Evidence(cov, cos, z, float(ranked.cosine.max()) if len(ranked.cosine) else cos)


def null_quantiles(best: np.ndarray, params: AbstainParams) -> dict[str, float]:
    """The cosine thresholds from the best cosines ``best`` that the PROBES reach in a corpus."""
    return {"strong": float(np.quantile(best, params.strong_quantile)) + params.margin,
            "weak": float(np.quantile(best, params.weak_quantile)) + params.margin,
            "null": float(np.median(best))}


def answers(index: Index, plan: QueryPlan, ranked: Ranked, doc: int, params: AbstainParams,
            topic_gain: Callable[[], float | None] | None = None) -> bool:
    """Whether window ``doc`` (the best candidate) answers the question; ``topic_gain``
    measures the topic gain of ``doc`` when asked (hybrid mode)."""
    if not params.enabled:
        return True
    ev = evidence(index, plan, ranked, doc)
    if ev.cosine is None or "strong" not in ranked.stats:
        if plan.missing and all(plan.weights.get(t, 1.0) < 1.0 for t in plan.ids):
            return False  # the only evidence is a guessed respelling, and another word has no match at all
        return ev.coverage >= params.min_coverage
    gain = topic_gain() if topic_gain is not None else None
    if gain is not None and gain <= params.topic_margin:
        return False
    cos = ev.best_cosine if params.best_cosine and ev.best_cosine is not None else ev.cosine
    if params.rule == "calibrated" and "null" in ranked.stats:
        null = ranked.stats["null"]
        return (cos - null) / max(1e-6, 1.0 - null) >= params.min_similarity or ev.coverage >= params.answer_coverage
    if cos >= ranked.stats["strong"]:
        return True
    return cos >= ranked.stats["weak"] and ev.coverage >= params.weak_coverage
