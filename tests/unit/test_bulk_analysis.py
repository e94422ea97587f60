"""Bulk analysis gives exactly the per-passage analysis: same terms, spans and order."""

import numpy as np
import pytest

from retrieval.analyze import Analyzer, TermTable
from retrieval.index import build
from retrieval.model import Transcript, Utterance
from tests.conftest import BUNDLED, ROOT

TEXTS = [
    "Rockets ROCKET’s ｒｏｃｋｅｔｓ un-regretted x-y-z foo--bar state-of-the-art don't",
    "I'm troubled by the foamy paradox and car shift 2. The foamy paradox again, foamy",
    "馬斯克的火箭。SpaceX、特斯拉、神經聯網、XAI 费米悖论 馬",
    "",
    "--- ... ’’ '' a",
    "paradox foamy paradox-foamy foamy-paradox",
]


def _reference(a: Analyzer, text: str) -> list[tuple[str, int, int]]:
    return [(t.term, t.start, t.end) for t in a.document_tokens(text)]


def _bulk(a: Analyzer, table: TermTable, text: str) -> list[tuple[str, int, int]]:
    toks = a.text_tokens(text, table)
    inv = {i: t for t, i in table.vocab.items()}
    assert np.all(np.diff(toks.anchor) >= 0)
    out = [(inv[int(i)], int(s), int(e)) for i, s, e in zip(toks.ids, toks.start, toks.end, strict=True)]
    return out


def test_whole_texts_analyse_as_document_tokens_do():
    a = Analyzer({"fermi": ["foamy paradox"], "kardashev": ["car shift"], "neuralink": ["神經聯網"],
                  "paradox": ["paradox"]})
    table = TermTable()
    for text in TEXTS:
        assert _bulk(a, table, text) == _reference(a, text), text


def test_bundled_transcripts_analyse_identically():
    from retrieval.corpus import load_corpus
    from retrieval.segment import segment

    corpus = load_corpus(BUNDLED, ROOT / "config" / "corpus.toml")
    a = Analyzer(corpus.glossary, corpus.speaker_names())
    table = TermTable()
    for t in corpus.transcripts:
        text = segment(t).text
        assert _bulk(a, table, text) == _reference(a, text)


def _stored(index, d: int, inv: dict[int, str]) -> list[tuple[str | None, int, int]]:
    starts, ends = index.token_spans(d, d + 1)
    return [(inv.get(int(i)), int(x), int(y)) for i, x, y in zip(index.tokens_of(d), starts, ends, strict=True)]


def test_every_passage_stores_its_own_analysis_even_when_cut_inside_a_word_run():
    from retrieval.corpus import Corpus

    # 300 CJK characters without punctuation are cut between characters, inside one run
    run = "火箭发动机燃烧甲烷和液氧我们认为费米悖论困扰着很多人" * 12
    words = " ".join(f"state-of-the-art-{i} foamy paradox" for i in range(80))
    t = Transcript("s", "s.txt", [Utterance(run), Utterance(words), Utterance(run + " 馬斯克")])
    corpus = Corpus([t], {"fermi": ("foamy paradox",)}, "fp")
    a = Analyzer(corpus.glossary)
    index = build(corpus, a)
    inv = {i: term for term, i in index.vocab.items()}
    assert index.size > 4
    for d in range(index.size):
        ref = [(None if a.is_stopword(x.term) else x.term, x.start, x.end)
               for x in a.document_tokens(index.passage(d).text)]
        assert _stored(index, d, inv) == ref, d


def test_sources_analysed_in_worker_processes_equal_those_analysed_here(tmp_path):
    from retrieval.corpus import load_source, scan_corpus
    from retrieval.segments import analyse_many, analyse_source

    (tmp_path / "broken.srt").write_text("1\n00:00:01,000 --> soon\nbad\n", encoding="utf-8")
    scan = scan_corpus(BUNDLED, ROOT / "config" / "corpus.toml")
    bad = scan_corpus(tmp_path, None)
    a = Analyzer(scan.manifest.glossary)
    here, there = TermTable(), TermTable()
    jobs = [(load_source, (bad.files[0], bad.manifest), "b", "broken.srt")]
    jobs += [(load_source, (f, scan.manifest), f.name, f.name) for f in scan.files]
    files = [None, *scan.files]
    got = list(analyse_many(jobs, a, there, 2))
    assert isinstance(got[0], str) and "broken.srt:" in got[0]
    inv_here = lambda ids: [None if i < 0 else list(here.vocab)[i] for i in ids.tolist()]  # noqa: E731
    inv_there = lambda ids: [None if i < 0 else list(there.vocab)[i] for i in ids.tolist()]  # noqa: E731
    for f, seg in zip(files[1:], got[1:], strict=True):
        ref = analyse_source(load_source(f, scan.manifest), a, here, f.name, f.name)
        assert seg.text == ref.text and seg.quotes == ref.quotes and seg.key == ref.key
        assert inv_there(seg.tok_ids) == inv_here(ref.tok_ids)
        assert np.array_equal(seg.tok_step, ref.tok_step) and np.array_equal(seg.tok_len, ref.tok_len)
        assert np.array_equal(seg.doc_len, ref.doc_len)
        ours = sorted(zip(inv_there(seg.post_term), seg.post_doc.tolist(), seg.post_tf.tolist(), strict=True))
        assert ours == sorted(zip(inv_here(ref.post_term), ref.post_doc.tolist(), ref.post_tf.tolist(), strict=True))


def test_a_build_in_two_workers_with_many_sources_each_equals_one_made_here():
    """Each worker numbers terms its own way and ships only those new since its last source;
    CJK bigrams met in earlier sources are found again by key: every passage must still store
    the terms a build in this process gives it."""
    from retrieval.corpus import Corpus

    words = "rocket methane oxygen paradox foamy engine booster orbit lunar relay".split()
    transcripts = []
    for n in range(14):
        latin = " ".join(f"{words[(n + k) % len(words)]} word{n}x{k} state-of-the-art-{n % 3}" for k in range(40))
        cjk = "火箭发动机燃烧甲烷" * 3 + "新词" + chr(0x4E00 + n) + chr(0x4E80 + n) + "和液氧"
        transcripts.append(Transcript(f"s{n}", f"s{n}.txt", [Utterance(latin), Utterance(cjk + " " + latin)]))
    corpus = Corpus(transcripts, {"fermi": ("foamy paradox",)}, "fp")
    a = Analyzer(corpus.glossary)
    here, there = build(corpus, a, workers=0), build(corpus, a, workers=2)
    inv_here = {i: t for t, i in here.vocab.items()}
    inv_there = {i: t for t, i in there.vocab.items()}
    assert there.size == here.size > 14
    for d in range(here.size):
        assert _stored(there, d, inv_there) == _stored(here, d, inv_here), d
    assert {t: float(there.a["idf"][i]) for t, i in there.vocab.items()} == pytest.approx(
        {t: float(here.a["idf"][i]) for t, i in here.vocab.items()})
