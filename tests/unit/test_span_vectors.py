"""Span vectors: a whole text read once, a sentence at a time, each span pooled from its tokens.

Real packaged model, offline. What a user would notice: every word of a transcript is read (no
span loses its end, however long a sentence runs), and a span read inside its transcript means
what it means alone, so hybrid search finds it by meaning.
"""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.semantic import Embedder

TOPICS = [
    "The volcano behind our village erupts every spring and the lava runs down into the valley.",
    "My grandmother cooked pasta every Sunday and the whole family came to eat it.",
    "The battery pack is the most expensive part of an electric car, so we redesigned the cells.",
    "We trained for the marathon for six months, running in the rain before work.",
    "The deep ocean is mostly unmapped, and submarines find new species on every dive.",
    "Chess taught me to think three moves ahead before I say anything in a meeting.",
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> Embedder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return Embedder(model_cache=tmp_path_factory.mktemp("models"))


def _transcript(repeat: int = 1) -> tuple[str, np.ndarray]:
    """A text of the topic sentences (``repeat`` rounds) and each sentence's char span."""
    text, spans = "", []
    for _ in range(repeat):
        for sentence in TOPICS:
            spans.append((len(text), len(text) + len(sentence)))
            text += sentence + " "
    return text, np.asarray(spans, np.int64)


def test_every_token_is_read_once_a_sentence_at_a_time_and_a_long_sentence_in_pieces(embedder):
    bert = embedder.onnx_encoder
    text, spans = _transcript(repeat=4)
    pieces = [f"and then the {n}th rocket flew" for n in range(80)]
    long = " ".join(pieces) + "."
    spans = np.vstack([spans, [[len(text), len(text) + len(long)]]])
    text += long
    plan = bert.span_plan(text, spans, spans[:, 0])
    sentence_tokens = [len(x) - 2 for x in bert.encode_ids(TOPICS * 4)]  # their special tokens aside
    long_tokens = sum(len(x) - 2 for x in bert.encode_ids(pieces)) + 1  # and the full stop
    assert long_tokens > 2 * bert.max_length
    # every token of the text, read once: each topic sentence in a window of its own ...
    assert plan.sizes[: len(sentence_tokens)] == sentence_tokens
    # ... and the long one in windows as long as the model reads, the last with the rest
    rest = plan.sizes[len(sentence_tokens):]
    assert sum(rest) == long_tokens and max(len(w) for w in plan.windows) == bert.max_length
    assert len(rest) == -(-long_tokens // (bert.max_length - 2))


def test_a_sentence_read_inside_its_transcript_means_what_it_means_alone(embedder):
    text, spans = _transcript()
    (inside,) = embedder.embed_spans([text], [spans], [spans[:, 0]])
    alone = embedder.embed_documents(TOPICS)
    sims = inside @ alone.T
    assert (sims.argmax(axis=1) == np.arange(len(TOPICS))).all()
    assert np.diag(sims).min() > 0.9
    assert np.allclose(np.linalg.norm(inside, axis=1), 1.0, atol=1e-5)


def test_a_span_across_several_windows_and_one_in_a_long_text_get_their_whole_meaning(embedder):
    text, spans = _transcript(repeat=3)
    across = np.asarray([[spans[0, 0], spans[2, 1]], [spans[-2, 0], spans[-1, 1]]], np.int64)
    (vecs,) = embedder.embed_spans([text], [across], [spans[:, 0]])
    alone = embedder.embed_documents([text[a:b] for a, b in across.tolist()])
    sims = vecs @ alone.T  # each nearest the same text embedded whole; the last span of a long text is read too
    assert (sims.argmax(axis=1) == [0, 1]).all() and np.diag(sims).min() > 0.8
    query = embedder.embed_query("where do submarines discover new animals")
    assert int(np.argmax(vecs @ query)) == 1


def test_texts_are_pooled_apart_and_an_empty_text_gets_no_vectors(embedder):
    text, spans = _transcript()
    other = "Nothing here is about volcanoes. We talk about taxes and the price of rent in the city."
    a, empty, b = embedder.embed_spans([text, "", other], [spans[:2], np.zeros((0, 2)), [[0, len(other)]]],
                                       [spans[:, 0], np.zeros(0), [0]])
    assert a.shape == (2, embedder.dim) and empty.shape == (0, embedder.dim) and b.shape == (1, embedder.dim)
    alone = embedder.embed_documents([TOPICS[0], TOPICS[1], other])
    assert float(a[0] @ alone[0]) > 0.9 and float(b[0] @ alone[2]) > 0.9
