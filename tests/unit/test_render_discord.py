"""Reply -> Discord message: escaping, bold highlights, footers, buttons and Discord's size limits."""

from __future__ import annotations

from bot.platforms.discord.render import (
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    TOTAL_LIMIT,
    marked,
    payload_of,
    render,
    size,
    total_size,
    trim_words,
)
from bot.reply import Action, ActionKind, QuoteCard, Reply

URL = "https://www.youtube.com/watch?v=abc123&t=754s"


def make_card(text: str = "We should become a multiplanetary species.", **kw) -> QuoteCard:
    values = dict(
        text=text,
        title="Elon Musk: the future",
        source_id="000",
        passage_key="000@10",
        speaker="Elon Musk",
        time_label="12:34",
        url=URL,
        thumbnail_url="https://i.ytimg.com/vi/abc123/hqdefault.jpg",
    )
    values.update(kw)
    return QuoteCard(**values)


def test_card_becomes_embed_with_link_bold_words_footer_and_thumbnail():
    card = make_card(highlights=((19, 33),))
    msg = render(Reply(cards=(card,), ephemeral=True))
    (embed,) = msg.embeds
    assert embed.title == "Elon Musk: the future"
    assert embed.url == URL
    assert embed.description == "We should become a **multiplanetary** species."
    assert embed.footer.text == "Elon Musk · 12:34"
    assert embed.thumbnail.url == card.thumbnail_url
    assert msg.ephemeral is True


def test_missing_speaker_and_time_are_said_plainly():
    msg = render(Reply(cards=(make_card(speaker=None, time_label="", url=None, thumbnail_url=None),)))
    (embed,) = msg.embeds
    assert embed.footer.text == "speaker not marked"
    assert embed.url is None
    assert embed.thumbnail.url is None


def test_mentions_and_markdown_in_quotes_are_neutralised():
    text = "Hey @everyone and @here, look at *this* and <@123456789012345678> __now__"
    msg = render(Reply(text="you asked about @everyone", cards=(make_card(text),)))
    desc = msg.embeds[0].description
    assert "@everyone" not in desc and "@here" not in desc and "<@123456789012345678>" not in desc
    assert "@\u200beveryone" in desc
    assert r"\*this\*" in desc and r"\_\_now\_\_" in desc
    assert "@everyone" not in msg.content


def test_highlights_are_bolded_after_escaping_and_overlaps_merge():
    text = "a*b stars and more stars"
    out = marked(text, ((4, 9), (6, 13), (19, 24)))
    assert out == r"a\*b **stars and** more **stars**"


def test_highlight_with_surrounding_spaces_keeps_bold_tight():
    assert marked("one two three", ((3, 8),)) == "one **two** three"


def test_trim_words_cuts_at_a_word_boundary_with_ellipsis():
    text = "alpha beta gamma delta epsilon"
    out = trim_words(text, 20)
    assert out == "alpha beta gamma…"
    assert size(out) <= 20
    assert trim_words(text, 100) == text


def test_trim_words_counts_astral_characters_as_two():
    text = "😀" * 10
    out = trim_words(text, 9)
    assert size(out) <= 9


def test_long_description_is_trimmed_within_limit_and_keeps_bold_balanced():
    words = ["word"] * 1500
    text = " ".join(words)
    highlights = tuple((i * 5, i * 5 + 4) for i in range(0, 1500, 3))
    out = marked(text, highlights)
    assert size(out) <= DESCRIPTION_LIMIT
    assert out.endswith("…")
    assert out.count("**") % 2 == 0


def test_many_long_cards_stay_under_total_limit():
    text = " ".join(["lengthy"] * 900)  # about 7,200 characters each
    cards = tuple(make_card(text, highlights=((0, 7),)) for _ in range(12))
    msg = render(Reply(text="Results", cards=cards))
    assert len(msg.embeds) == 10
    assert total_size(msg.embeds) <= TOTAL_LIMIT
    for e in msg.embeds:
        assert size(e.description) <= DESCRIPTION_LIMIT
        assert e.description.endswith("…")
    # each card gets a fair share, none starved
    assert min(size(e.description) for e in msg.embeds) > 300


def test_long_text_moves_into_an_embed_instead_of_breaking_content_limit():
    text = "\n".join(f"• Episode number {i} with a long title" for i in range(200))
    msg = render(Reply(text=text, kind="sources"))
    assert msg.content == ""
    assert size(msg.embeds[0].description) <= DESCRIPTION_LIMIT
    assert total_size(msg.embeds) <= TOTAL_LIMIT


def test_short_text_stays_in_content():
    msg = render(Reply(text="Sorry, something went wrong on my side. Reference: abc."))
    assert msg.content.startswith("Sorry, something went wrong")
    assert size(msg.content) <= CONTENT_LIMIT
    assert msg.embeds == ()


def test_buttons_carry_payload_and_post_button_only_when_private():
    actions = (
        Action(ActionKind.MORE, "More", "more:abcd:3"),
        Action(ActionKind.CONTEXT, "Context", "ctx:000@10"),
        Action(ActionKind.POST, "Post to channel", "post:ask:abcd:0"),
    )
    reply = Reply(cards=(make_card(),), actions=actions, ephemeral=True)
    private = render(reply)
    assert [b.custom_id for b in private.buttons] == ["qb:more:abcd:3", "qb:ctx:000@10", "qb:post:ask:abcd:0"]
    assert [payload_of(b.custom_id) for b in private.buttons] == ["more:abcd:3", "ctx:000@10", "post:ask:abcd:0"]
    public = render(reply, public=True)
    assert [b.label for b in public.buttons] == ["More", "Context"]
    assert public.ephemeral is False


def test_payload_of_ignores_foreign_custom_ids():
    assert payload_of("someone-else:button") is None


def test_empty_reply_still_says_something():
    assert render(Reply()).content


def test_button_whose_custom_id_would_exceed_discord_limit_is_left_out():
    actions = (Action(ActionKind.CONTEXT, "Context", "ctx:" + "x" * 96), Action(ActionKind.MORE, "More", "more:k:3"))
    msg = render(Reply(cards=(make_card(),), actions=actions))
    assert [b.label for b in msg.buttons] == ["More"]


def test_a_card_with_a_permalink_links_to_the_quote_page_within_the_limits():
    page = "https://quotes.example.com/q/000%4010+42"
    long = make_card("word " * 2000, permalink=page)
    msg = render(Reply(cards=(long,), kind="answer"))
    (embed,) = msg.embeds
    assert embed.description.endswith(f"[Link to this quote]({page})")
    assert size(embed.description) <= DESCRIPTION_LIMIT and total_size(msg.embeds) <= TOTAL_LIMIT
    plain = render(Reply(cards=(make_card(),), kind="answer")).embeds[0]
    assert "Link to this quote" not in plain.description
