"""Token arrays are stored narrow when they fit and wide when they do not; search reads the same either way."""

from pathlib import Path

from retrieval.analyze import Analyzer
from retrieval.corpus import Corpus
from retrieval.index import Index, IndexStore, build
from retrieval.model import Transcript, Utterance
from retrieval.search import Searcher


def _word(i: int) -> str:
    out, i = "", i + 1
    while i:
        out += "bcdfghjklmnpqrstvwz"[i % 19] + "aeiou"[i % 5]
        i //= 19
    return out


def _shown(index: Index, analyzer: Analyzer, query: str) -> list[tuple[str, list[str]]]:
    hits = Searcher(index, analyzer).search(query, 3)
    return [(h.text, [h.text[s:e] for s, e in h.highlights]) for h in hits]


def _built_and_loaded(corpus: Corpus, analyzer: Analyzer, tmp_path: Path) -> tuple[Index, Index]:
    built = build(corpus, analyzer)
    IndexStore(tmp_path).publish(built)
    return built, IndexStore(tmp_path).load()


def test_far_apart_and_very_long_tokens_highlight_where_they_are(tmp_path):
    utts = [Utterance("Rockets are loud " + "~" * 200 + " and their engines burn methane."),
            Utterance("One word " + "x" * 300 + " ends here, with engines.")]
    corpus = Corpus([Transcript("s", "s.txt", utts, title="S")], {}, "fp")
    analyzer = Analyzer(corpus.glossary)
    built, loaded = _built_and_loaded(corpus, analyzer, tmp_path)
    assert loaded.meta["dtypes"]["tok_step"] == loaded.meta["dtypes"]["tok_len"] == "<i4"
    for index in (built, loaded):
        [(text, marked)] = _shown(index, analyzer, "engines methane")[:1]
        assert marked == ["engines", "methane", "engines"] and text.startswith("Rockets are loud ~")
        assert [m for _, m in _shown(index, analyzer, "x" * 300)] == [["x" * 300]]


def test_a_vocabulary_too_large_for_two_byte_ids_still_finds_every_word(tmp_path):
    words = [_word(i) for i in range(66_000)]
    utts = [Utterance(" ".join(words[j : j + 12]) + ".") for j in range(0, len(words), 12)]
    utts.append(Utterance("The quick brown fox jumps over the lazy dog."))
    corpus = Corpus([Transcript("s", "s.txt", utts, title="S")], {}, "fp")
    analyzer = Analyzer(corpus.glossary)
    built, loaded = _built_and_loaded(corpus, analyzer, tmp_path)
    assert len(loaded.vocab) > 0xFFFF and loaded.meta["dtypes"]["tok_ids"] == "<i4"
    for index in (built, loaded):
        assert _shown(index, analyzer, "lazy dog")[0][1] == ["lazy", "dog"]
        for w in (words[5], words[65_990]):
            assert _shown(index, analyzer, w)[0][1] == [w]


def test_a_small_corpus_stores_one_or_two_bytes_per_token_field(tmp_path):
    utts = [Utterance("Rockets are loud and their engines burn methane."), Utterance("The engines are reusable.")]
    corpus = Corpus([Transcript("s", "s.txt", utts, title="S")], {}, "fp")
    analyzer = Analyzer(corpus.glossary)
    _, loaded = _built_and_loaded(corpus, analyzer, tmp_path)
    assert [loaded.meta["dtypes"][k] for k in ("tok_ids", "tok_step", "tok_len")] == ["<u2", "|i1", "|u1"]
    assert _shown(loaded, analyzer, "reusable engines")[0][1] == ["engines", "engines", "reusable"]
