"""Re-scoring a few candidate passages against a question with token-level evidence.

``MaxSimReranker`` is late interaction over the packaged MiniLM encoder's token vectors
(run on ONNX Runtime): every content token of the question takes its best cosine over the
passage's tokens, and the passage scores the mean of those. A passage then has to answer
each part of the question somewhere, where a pooled sentence vector can be won by one
strong topic word. It runs the encoder over the candidates at query time, so its cost grows
with their number and length (``benchmarks/encoding.py`` prints it for 20/30/50).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np

from retrieval.semantic import (
    DEFAULT_MODEL,
    INSTALL_HINT,
    Embedder,
    SemanticUnavailable,
    onnx_installed,
    resolve_model,
    unit_rows,
)

# Tokens that carry no content of their own: punctuation and WordPiece specials.
_NO_CONTENT = re.compile(r"^(?:\[(?:CLS|SEP|PAD|UNK)\]|[^\w]+)$")


class Reranker(Protocol):
    def score(self, query: str, texts: list[str]) -> np.ndarray:
        """One score per text, higher is better."""
        ...


class MaxSimReranker:
    """Mean over the question's content tokens of their best cosine to any token of the passage.

    Passage token vectors are kept in a small cache by text (a "more results" request and
    related questions re-score the same candidates).
    """

    def __init__(self, bert, cache_size: int = 512) -> None:
        self._bert = bert
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def _unit_tokens(self, texts: list[str]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(texts)
        todo: list[int] = []
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is None:
                    todo.append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = hit
        if todo:
            fresh = self._bert.tokens([texts[i] for i in todo])
            with self._lock:
                for i, tok in zip(todo, fresh, strict=True):
                    vec = unit_rows(tok[1:-1] if len(tok) > 2 else tok)
                    out[i] = vec
                    if self._cache_size > 0:
                        self._cache[texts[i]] = vec
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    def _query_tokens(self, query: str) -> np.ndarray:
        (ids,) = self._bert.encode_ids([query])
        (tok,) = self._bert.tokens([query])
        words = self._bert.id_to_token(ids)
        keep = [i for i, w in enumerate(words) if not _NO_CONTENT.match(w)]
        return unit_rows(tok[keep] if keep else tok)

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, np.float32)
        if not query.strip():
            return np.zeros(len(texts), np.float32)
        q = self._query_tokens(query)
        docs = self._unit_tokens(list(texts))
        return np.asarray([float((q @ d.T).max(axis=1).mean()) if len(d) else 0.0 for d in docs], np.float32)


def load_reranker(name: str = DEFAULT_MODEL, embedder: Embedder | None = None,
                  model_cache: Path | None = None) -> Reranker:
    """The MaxSim re-ranker for the BERT model ``name`` (default: the packaged MiniLM).

    Shares the encoder of ``embedder`` when it runs the same model on ONNX Runtime; raises
    ``SemanticUnavailable`` when ONNX Runtime or the model is missing.
    """
    if embedder is not None and embedder.backend == "onnx" and embedder.info.resolved == resolve_model(name):
        bert = embedder.onnx_encoder
        if bert is not None:
            return MaxSimReranker(bert)
    if not onnx_installed():
        raise SemanticUnavailable(f"re-ranking needs the 'semantic' extra: {INSTALL_HINT}")
    resolved = Path(resolve_model(name))
    if not (resolved / "model.safetensors").is_file() or not (resolved / "tokenizer.json").is_file():
        raise SemanticUnavailable(f"re-ranking model {name!r} is not a BERT folder with model.safetensors and "
                                  f"tokenizer.json ({resolved})")
    from retrieval.embed_onnx import OnnxBert

    try:
        return MaxSimReranker(OnnxBert(resolved, cache_dir=model_cache))
    except Exception as e:
        raise SemanticUnavailable(f"re-ranking model {name!r} did not load ({resolved}): {e}") from e
