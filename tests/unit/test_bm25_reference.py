"""Our BM25 scorer agrees with the reference implementations on the same tokens."""

import bm25s
import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from retrieval.analyze import Analyzer
from retrieval.corpus import load_corpus
from retrieval.index import BM25Params, build
from tests.conftest import BUNDLED, ROOT

QUERIES = [
    "fermi paradox aliens",
    "raw materials cost of a rocket",
    "chimpanzee society violence",
    "grok hitchhiker's guide",
    "馬斯克 博士 斯坦福",
    "the the the",
]


@pytest.fixture(scope="module")
def built():
    corpus = load_corpus(BUNDLED, ROOT / "config" / "corpus.toml")
    analyzer = Analyzer(corpus.glossary, corpus.speaker_names())
    index = build(corpus, analyzer, BM25Params(k1=1.5, b=0.75, idf="robertson"))
    docs = []
    for d in range(index.size):
        toks = analyzer.document_tokens(index.passage(d).text)
        docs.append([t.term for t in toks if not analyzer.is_stopword(t.term)])
    return index, analyzer, docs


def test_matches_rank_bm25_okapi_with_epsilon_zero(built):
    index, analyzer, docs = built
    ref = BM25Okapi(docs, k1=1.5, b=0.75, epsilon=0)
    for q in QUERIES:
        terms = [t for t in analyzer.query_terms(q) if t in index.vocab]
        ours = index.scores(index.term_ids(terms))
        theirs = ref.get_scores(terms)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4, err_msg=q)
    assert index.size == len(docs) > 500


def test_matches_bm25s_atire_robertson(built):
    index, analyzer, docs = built
    ref = bm25s.BM25(method="atire", idf_method="robertson", k1=1.5, b=0.75)
    ref.index(docs, show_progress=False)
    for q in QUERIES[:-1]:
        terms = [t for t in analyzer.query_terms(q) if t in index.vocab]
        ours = index.scores(index.term_ids(terms))
        theirs = ref.get_scores(terms)
        # (terms in fewer than half the passages: the idf variants agree there)
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-3, atol=1e-3, err_msg=q)


def test_lucene_idf_is_never_negative(built):
    _, analyzer, _ = built
    corpus = load_corpus(BUNDLED, ROOT / "config" / "corpus.toml")
    index = build(corpus, analyzer)  # default: lucene idf
    assert float(np.min(index.a["idf"])) > 0
    top = np.argsort(-index.scores(index.term_ids(["fermi", "paradox"])))[:3]
    assert any("paradox" in index.passage(int(d)).text for d in top)
