"""Search behaviour a user notices, lexical mode: abstaining, speakers, misspellings, quotes that keep to one turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.retriever import Retriever
from retrieval.search import Searcher, open_searcher

HOST, GUEST, OTHER = "Ann Lee", "Bob Stone", "Cara Diaz"

INTERVIEW = [
    ("host", "Welcome back to the show. Today I talk with Bob Stone and Cara Diaz about gardens, tomatoes and "
             "compost, and about the bakery Bob opened last spring."),
    ("guest", "Thanks for having me. I have been growing tomatoes on my balcony for ten years now."),
    ("host", "So what is the secret to keeping tomatoes healthy through a hot summer?"),
    ("guest", "Water them deeply in the early morning, mulch the soil with straw, and never let the leaves stay "
              "wet overnight, because that invites blight. I also pinch off the suckers every week."),
    ("other", "For me compost matters more than anything. I turn my compost pile every Sunday and it feeds the "
              "tomatoes better than any fertiliser from the shop."),
    ("host", "Cara, you also bake bread, right?"),
    ("other", "Yes, sourdough mostly. I feed the starter twice a day and bake on Saturdays with a long cold "
              "proof in the fridge overnight."),
    ("guest", "My bakery uses a rye starter that my grandmother kept alive in Warsaw for thirty years. We "
              "still feed it with the same dark rye flour."),
    ("host", "Did anything go wrong in the first year of the bakery?"),
    ("guest", "The oven broke in the second week and we baked in a borrowed kitchen for a month. I learned "
              "to keep a spare thermostat on the shelf."),
    ("host", "Let us talk about Kubernetes clusters for a second, because listeners keep asking."),
    ("guest", "Honestly I know nothing about that, I grow vegetables and bake bread."),
]


def write_interview(folder: Path) -> Path:
    """One episode with three named speakers, written as tagged turns with a manifest."""
    folder.mkdir(parents=True)
    text = " ".join(f"- [{tag}] {line}" for tag, line in INTERVIEW)
    (folder / "garden.txt").write_text(text + "\n", encoding="utf-8")
    (folder / "corpus.toml").write_text(
        '[[source]]\nfile = "garden.txt"\nid = "garden"\ntitle = "Gardens and bread"\n\n'
        f'[source.speaker_tags]\nhost = "{HOST}"\nguest = "{GUEST}"\nother = "{OTHER}"\n',
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def searcher(tmp_path) -> Searcher:
    corpus = write_interview(tmp_path / "corpus")
    return open_searcher(corpus, corpus / "corpus.toml", tmp_path / "ix")


def test_the_searcher_meets_the_retriever_contract(searcher):
    assert isinstance(searcher, Retriever)
    assert searcher.mode == "lexical" and searcher.size == searcher.index.size > 0
    assert "BM25" in searcher.describe()


def test_an_off_topic_question_finds_nothing_but_an_on_topic_one_is_answered(searcher):
    assert searcher.search("what is the best pizza topping in naples", k=3) == []
    assert searcher.search("how do I configure a vpn router firewall", k=3) == []
    hits = searcher.search("how do you keep tomatoes healthy in a hot summer", k=3)
    assert hits and "mulch the soil with straw" in hits[0].text
    # the closest mentions stay available for a reply that says nothing answered
    question = "pizza with pepperoni, anchovies, mozzarella and oregano straight from the fridge"
    assert searcher.search(question, k=3) == []
    closest = searcher.closest(question, k=2)
    assert closest and "fridge" in closest[0].text


def test_a_speaker_question_prefers_that_speakers_turn_over_mentions_of_the_name(searcher):
    # Both Cara and Bob speak of a starter; the episode introduction names them both.
    hits = searcher.search("what did cara say about her starter", k=3)
    assert hits[0].passage.speaker == OTHER and "twice a day" in hits[0].text
    hits = searcher.search("what did bob say about his starter", k=3)
    assert hits[0].passage.speaker == GUEST and "grandmother" in hits[0].text
    assert not hits[0].text.startswith("Welcome back")


def test_a_misspelled_word_finds_the_transcripts_word_without_a_glossary(searcher):
    assert searcher.index.glossary == {}
    assert "tomatos" not in searcher.index.vocab
    hits = searcher.search("tomatos blight", k=3)
    assert hits and "invites blight" in hits[0].text
    assert any(hits[0].text[a:b].lower() == "blight" for a, b in hits[0].highlights)
    hits = searcher.search("thermostatt oven", k=1)
    assert hits and "spare thermostat" in hits[0].text


def test_a_question_turn_hands_over_to_the_answer_and_quotes_keep_to_one_speaker(searcher):
    hits = searcher.search("did anything go wrong in the first year of the bakery", k=3)
    assert hits and hits[0].passage.speaker == GUEST and "oven broke" in hits[0].text
    for h in searcher.search("bakery starter bread compost tomatoes", k=5):
        assert h.passage.speaker is not None
        # a quote is one speaker's words: it never runs on into the next turn
        turn = next(line for tag, line in INTERVIEW if h.text.split(". ")[0] in line)
        assert h.text in turn, h.text


def _srt(cues: list[tuple[float, str]]) -> str:
    def stamp(t: float) -> str:
        return f"00:{int(t) // 60:02d}:{int(t) % 60:02d},000"

    return "\n".join(f"{i}\n{stamp(t)} --> {stamp(t + 4)}\n{text}\n" for i, (t, text) in enumerate(cues, 1))


def _episode(tmp_path: Path, cues: list[tuple[float, str]]) -> Searcher:
    """A searcher over one SRT episode made of ``cues`` (speakers as ``Name:`` text), no manifest."""
    folder = tmp_path / "pod"
    folder.mkdir()
    (folder / "ep1.srt").write_text(_srt(cues), encoding="utf-8")
    return open_searcher(folder, None, tmp_path / "ix")


def test_a_listeners_yeah_does_not_cut_the_quote_before_the_answer_and_shows_as_theirs(tmp_path):
    s = _episode(tmp_path, [
        (0, "Dan: Welcome back. Today our guest tells us how he started programming as a kid."),
        (5, "Dan: So what got you into computers in the first place?"),
        (10, "Zoe: I remember using the turtle language on the school computer to make the little turtle-"),
        (15, "Dan: Yeah."),
        (17, "Zoe: -draw back and forth. What really excited me was discovering loops, because a few lines "
             "could draw a whole garden of flowers."),
        (25, "Dan: That is a lovely story. Let us take a short break and come back to your first job."),
        (35, "Zoe: Sure, the first job was at a bank, writing reports for the accounting team every single week."),
    ])
    hits = s.search("what excited zoe when she used the turtle language", k=3)
    assert hits and hits[0].passage.speaker == "Zoe"
    quote = hits[0].text
    # the quote runs on past Dan's "Yeah." to the answer, and the "Yeah." is credited to Dan
    assert "make the little turtle- [Dan: Yeah.] -draw back and forth." in quote
    assert "discovering loops" in quote
    # a real turn of Dan's still ends Zoe's quote
    assert "lovely story" not in quote
    shown = {quote[a:b].lower() for a, b in hits[0].highlights}
    assert {"turtle", "excited"} <= shown  # highlights still sit on the words they mark


def test_a_quote_never_ends_on_a_listeners_interjection(tmp_path):
    ramble = " ".join(["and then we kept rewriting the parser by hand"] * 16)  # one sentence, no room for it
    s = _episode(tmp_path, [
        (0, "Dan: Welcome back. Our guest today builds compilers for a living."),
        (5, "Zoe: My first compiler was for a tiny calculator language that I wrote in high school."),
        (10, "Dan: Yeah."),
        (12, f"Zoe: {ramble}."),
        (40, "Dan: Thanks Zoe, that is all the time we have today for this episode of the show."),
    ])
    hits = s.search("zoe first compiler calculator language", k=1)
    assert hits and hits[0].passage.speaker == "Zoe"
    assert hits[0].text == "My first compiler was for a tiny calculator language that I wrote in high school."
    assert hits[0].passage.char_end - hits[0].passage.char_start == len(hits[0].text)


def test_a_one_line_remark_is_shown_with_the_reply_it_got_marked_as_the_other_speakers(tmp_path):
    reply = ["Right, the novel, not the muscle relaxant.", "In that book soma is a drug the state hands out,",
             "and it keeps the whole population calm, content and docile.", "Nobody in the story ever has to feel sad,",
             "which is exactly what makes it such a dark idea."]
    s = _episode(tmp_path, [
        (0, "Dan: Welcome back. Today we ask the assistant about books and about medicine."),
        (5, "Zoe: No, I mean soma from Brave New World."),
        *[(8 + 3 * i, f"Dan: {line}" if i == 0 else line) for i, line in enumerate(reply)],
        (30, "Zoe: Anyway, let us get back to compilers and the parser I wrote for the calculator."),
    ])
    hits = s.search("soma brave new world", k=1)
    assert hits and hits[0].passage.speaker == "Zoe"
    assert hits[0].text == "No, I mean soma from Brave New World. [Dan: " + " ".join(reply) + "]"


def test_a_reply_whose_speaker_the_transcript_does_not_name_is_not_credited_to_the_remarks_speaker(tmp_path):
    folder = tmp_path / "talks"
    folder.mkdir()
    reply = ("oops, i'm really sorry, i was thinking of the muscle relaxant. in the novel soma is a drug "
             "that keeps the whole population calm and content.")
    (folder / "talk.txt").write_text(
        "- [host] welcome back, today we ask the assistant about books and about medicine.\n"
        f"- [guest] no, i mean soma from brave new world.\n- {reply}\n"
        "- [guest] anyway, let us get back to compilers and the parser i wrote for the calculator.\n",
        encoding="utf-8")
    (folder / "corpus.toml").write_text('[[source]]\nfile = "talk.txt"\nid = "talk"\ntitle = "Talk"\n\n'
                                        '[source.speaker_tags]\nhost = "Host"\nguest = "Guest"\n', encoding="utf-8")
    s = open_searcher(folder, folder / "corpus.toml", tmp_path / "ix")
    hits = s.search("soma brave new world", k=1)
    assert hits and hits[0].passage.speaker == "Guest"
    assert hits[0].text == f"no, i mean soma from brave new world. - [another speaker: {reply}]"


def test_a_remark_the_transcript_names_no_speaker_for_is_shown_alone(tmp_path):
    folder = tmp_path / "talks"
    folder.mkdir()
    (folder / "talk.txt").write_text(
        "- [host] welcome back, today we ask the assistant about books and about medicine.\n"
        "- no, i mean soma from brave new world.\n"
        "- [guest] right, the novel. in that book soma is a drug that keeps the whole population calm.\n",
        encoding="utf-8")
    (folder / "corpus.toml").write_text('[[source]]\nfile = "talk.txt"\nid = "talk"\ntitle = "Talk"\n\n'
                                        '[source.speaker_tags]\nhost = "Host"\nguest = "Guest"\n', encoding="utf-8")
    hits = open_searcher(folder, folder / "corpus.toml", tmp_path / "ix").search("soma brave new world", k=1)
    # with the reply, nothing would tell whose words are whose
    assert hits[0].passage.speaker is None and hits[0].text == "no, i mean soma from brave new world."


def test_a_question_that_spans_windows_hands_over_to_the_named_persons_answer(tmp_path):
    s = _episode(tmp_path, [
        (0, "Dan: Welcome back. Today Zoe tells us about her years in startups and her work at a bank."),
        (5, "Zoe: Thanks for having me, Dan."),
        (10, "Dan: You spent years at a bank, and you know, the reporting, the meetings, the long weeks. "
             "I want to take a second and talk about it, like, why did you jump into the startup life to begin "
             "with? Because a lot of people listening wonder about that move, and there is so much risk in it, "
             "the money, the hours, the chance that it all falls apart in a year or two, and you gave up a very "
             "steady job for it. Like, what about that was interesting to you?"),
        (30, "Zoe: Honestly I got tired of getting laid off every few years, and that would make anybody pivot. "
             "I wanted to own the thing I was building."),
        (40, "Zoe: Later I also mentored people who were leaving big companies for small teams."),
        (50, "Dan: Our next guest founded two startups and sold one of them to a bank last spring."),
    ])
    asking = [d for d in range(s.index.size) if s.index.passage(d).speaker == "Dan" and "startup life"
              in s.index.passage(d).text]
    assert asking and not s.index.passage(asking[0]).text.rstrip().endswith("?")  # the question runs on
    hits = s.search("what did zoe say about why she jumped into startups", k=3)
    assert hits and hits[0].passage.speaker == "Zoe" and "tired of getting laid off" in hits[0].text


STORY = [  # each sentence runs over two subtitle cues
    ("I started the garden when we moved to the coast,", "and the first thing I planted was a row of beans."),
    ("The salt wind burned their leaves within a week,", "so I built a hedge of rosemary along the fence."),
    ("Next spring the neighbours brought me cuttings", "of lavender, sage and a fig tree from their yard."),
    ("My daughter painted labels for every bed", "with the names of the plants in three languages."),
    ("We now sell the figs at the Saturday market", "and the money pays for seeds for the school garden."),
    ("Last year a storm flattened the greenhouse roof,", "and the whole street came over to rebuild it."),
    ("The new roof is polycarbonate instead of glass", "because it bends in the wind rather than shatters."),
    ("Every autumn we dry the herbs in the attic", "and give bundles of them to anyone who visits."),
]


def test_a_quote_opens_where_its_sentence_does_when_subtitle_cues_split_it(tmp_path):
    cues = [(0.0, "Dan: Welcome back. Today Zoe tells us how her garden by the sea began.")]
    for i, (a, b) in enumerate(STORY):
        cues += [(5.0 + 8 * i, ("Zoe: " if i == 0 else "") + a), (9.0 + 8 * i, b)]
    cues.append((80.0, "Dan: Thank you Zoe, that was a lovely story about the garden."))
    s = _episode(tmp_path, cues)
    index = s.index
    text = index.source_text("ep1")
    mid = [d for d in range(index.size) if not text[: index.passage(d).char_start].rstrip().endswith((".", ":"))
           and index.passage(d).speaker == "Zoe" and index.passage(d).char_start > text.index("Zoe")]
    assert mid  # some windows open mid-sentence, at a cue that continues one
    for query in ("polycarbonate bends rather than shatters", "figs saturday market seeds", "storm greenhouse roof"):
        hits = s.search(query, k=2)
        assert hits and hits[0].passage.speaker == "Zoe", query
        for h in hits:
            before = text[: h.passage.char_start].rstrip()
            assert before.endswith((".", "?", "!")) or h.passage.char_start == text.index("I started"), h.text
            assert h.text[0].isupper(), h.text
            cue = next(t for t, line in cues if line.removeprefix("Zoe: ").startswith(h.text[:20]))
            assert h.passage.start is not None and h.passage.start <= cue  # the link starts before its words


def test_a_listeners_echo_is_no_result_of_its_own_but_shows_inside_the_speakers_quote(tmp_path):
    s = _episode(tmp_path, [
        (0, "Dan: Welcome back. Jen has been a developer for six years and has thoughts on careers."),
        (5, "Jen: People call you senior after two years, but a career is thirty years long, and if you sprint "
            "the whole way you will"),
        (12, "Bekah: Burn out."),
        (13, "Jen: -hit a wall at some point, so I pace myself and take a real holiday every summer."),
        (20, "Dan: Let us talk about your first job at the bank and the reports you wrote there."),
    ])
    for query in ("burn out", "what did jen say about burning out"):
        hits = s.search(query, k=3)
        assert [h.passage.speaker for h in hits] == ["Jen"], query
        assert "you will [Bekah: Burn out.] -hit a wall" in hits[0].text
        assert hits[0].text.startswith("People call you senior")


def test_a_speaker_question_prefers_the_episodes_that_person_took_part_in(tmp_path):
    folder = tmp_path / "pod"
    folder.mkdir()
    (folder / "zoe.srt").write_text(_srt([
        (0, "Dan: Welcome back. Today Zoe tells us about her path into tech."),
        (5, "Dan: So what were you doing before you started programming?"),
        (10, "Zoe: I was a teacher for six years, and the school needed someone to look after its website."),
        (20, "Dan: Thanks Zoe, that is all the time we have for this episode."),
    ]), encoding="utf-8")
    (folder / "max.srt").write_text(_srt([
        (0, "Dan: Our guest today is Max, who runs a bakery."),
        (5, "Max: Before I started programming I baked bread, and programming felt like baking to me, "
            "so I started programming the ovens."),
        (15, "Dan: Thanks Max, that is all for this episode."),
    ]), encoding="utf-8")
    s = open_searcher(folder, None, tmp_path / "ix")
    hits = s.search("what did zoe do before she started programming?", k=2)
    assert hits and hits[0].passage.speaker == "Zoe" and "teacher for six years" in hits[0].text
    # the other guest's words still answer the same question without a name
    assert s.search("what did he do before he started programming?", k=1)[0].passage.speaker == "Max"


def test_a_clipped_quote_ends_after_a_whole_word_and_closes_the_mark_it_cut():
    from retrieval.rank import clip_quote

    quote = "No, I mean soma from Brave New World. [Dan: Right, the novel, not the muscle relaxant.]"
    assert clip_quote(quote, 200) == quote
    assert clip_quote(quote, 60) == "No, I mean soma from Brave New World. [Dan: Right, the]"
    assert clip_quote(quote, 30) == "No, I mean soma from Brave"
    assert clip_quote(quote, 45) == "No, I mean soma from Brave New World."  # the mark's name alone is left out
    assert all(len(clip_quote(quote, n)) <= n for n in range(5, len(quote)))
