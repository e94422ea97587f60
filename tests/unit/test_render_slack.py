"""Slack Block Kit rendering: escaping, highlights, links, limits, buttons."""

from __future__ import annotations

import json

from bot.platforms.slack.render import (
    BLOCK_LIMIT,
    SECTION_LIMIT,
    escape,
    fit,
    highlighted,
    link,
    render,
)
from bot.reply import Action, ActionKind, QuoteCard, Reply


def _card(text: str = "We should go to Mars.", **kw) -> QuoteCard:
    base = {
        "title": "Lex Fridman Podcast #400",
        "source_id": "002",
        "passage_key": "002@10",
        "speaker": "Elon Musk",
        "time_label": "12:34",
        "url": "https://www.youtube.com/watch?v=JN3KPFbWCy8&t=754s",
    }
    base.update(kw)
    return QuoteCard(text=text, **base)


def _answer(*cards: QuoteCard, text: str = "") -> Reply:
    actions = (
        Action(ActionKind.MORE, "More", "more:abc:3"),
        Action(ActionKind.CONTEXT, "Context", "ctx:002@10"),
        Action(ActionKind.POST, "Post to channel", "post:ask:abc:0"),
    )
    return Reply(text=text, cards=cards, actions=actions, ephemeral=True, kind="answer")


def _all_text(msg) -> str:
    return msg.text + json.dumps(msg.blocks, ensure_ascii=False)


def test_channel_mention_in_transcript_is_escaped_everywhere():
    card = _card("Then he typed <!channel> and <@U123> & left <https://evil.example|click>.")
    msg = render(_answer(card, text="You asked about <!here>"))
    dumped = _all_text(msg)
    assert "<!channel>" not in dumped and "<!here>" not in dumped and "<@U123>" not in dumped
    assert "&lt;!channel&gt;" in msg.blocks[1]["text"]["text"]
    assert "&amp; left &lt;https://evil.example|click&gt;" in msg.blocks[1]["text"]["text"]
    assert "&lt;!here&gt;" in msg.text
    # every mrkdwn object carrying transcript or user text is verbatim (no auto-parsed mentions)
    assert msg.blocks[0]["text"]["verbatim"] is True and msg.blocks[1]["text"]["verbatim"] is True


def test_highlights_are_bold_and_widened_to_whole_words():
    text = "The Fermi paradox & rockets"
    # "Ferm" (a stem hit inside a word), "paradox", and "rocket" (prefix of "rockets")
    out = highlighted(text, ((4, 8), (10, 17), (20, 26)))
    assert out == "The *Fermi paradox* &amp; *rockets*"


def test_highlight_over_punctuation_only_is_dropped():
    assert highlighted("a -- b", ((2, 4),)) == "a -- b"


def test_context_line_links_the_moment_with_escaped_url():
    msg = render(_answer(_card()))
    context = msg.blocks[1]
    assert context["type"] == "context"
    line = context["elements"][0]["text"]
    assert "*Elon Musk*" in line
    assert "<https://www.youtube.com/watch?v=JN3KPFbWCy8&amp;t=754s|12:34>" in line
    assert "Lex Fridman Podcast #400" in line


def test_link_cannot_break_out_or_use_other_schemes():
    assert link("https://x.example/a>b|c", "1:00") == "<https://x.example/a&gt;b%7Cc|1:00>"
    assert link("javascript:alert(1)", "1:00") == "1:00"
    assert link(None, "<!channel>") == "&lt;!channel&gt;"


def test_untimed_card_without_url_has_no_link():
    msg = render(_answer(_card(time_label="about 37% in", url=None)))
    line = msg.blocks[1]["elements"][0]["text"]
    assert "about 37% in" in line and "<" not in line


def test_long_quote_is_cut_to_section_limit_without_breaking_entities():
    text = "a & b " * 2000  # escapes to far more than 3,000 characters
    out = fit(text, ((0, 1),), SECTION_LIMIT)
    assert len(out) <= SECTION_LIMIT
    assert out.endswith("…")
    assert out.startswith("*a* &amp; b")
    body = out[:-1]
    assert body.count("&") == body.count("&amp;")  # no half-cut entity
    msg = render(_answer(_card(text)))
    assert msg.blocks[0]["type"] == "section" and len(msg.blocks[0]["text"]["text"]) <= SECTION_LIMIT


def test_many_cards_stay_within_block_and_text_limits():
    cards = [_card(f"quote number {i} " + "word " * 100) for i in range(60)]
    msg = render(_answer(*cards, text="Results"))
    assert len(msg.blocks) <= BLOCK_LIMIT
    total = sum(len(json.dumps(b, ensure_ascii=False)) for b in msg.blocks)
    assert total < 14_000
    assert "more not shown" in json.dumps(msg.blocks)
    assert msg.blocks[-1]["type"] == "actions"


def test_buttons_carry_payload_and_post_button_only_when_private():
    msg = render(_answer(_card()))
    buttons = msg.blocks[-1]["elements"]
    assert [b["value"] for b in buttons] == ["more:abc:3", "ctx:002@10", "post:ask:abc:0"]
    assert all(b["action_id"].startswith("qb:") for b in buttons)
    assert len({b["action_id"] for b in buttons}) == 3
    assert buttons[2]["text"]["text"] == "Post to channel"
    public = render(_answer(_card()), public=True)
    assert [b["value"] for b in public.blocks[-1]["elements"]] == ["more:abc:3", "ctx:002@10"]


def test_shared_by_line_names_the_user_and_strips_markup():
    msg = render(_answer(_card()), public=True, shared_by="U0ABC>|<!channel")
    shared = [b for b in msg.blocks if b["type"] == "context" and "Shared by" in b["elements"][0]["text"]]
    assert shared[0]["elements"][0]["text"] == "Shared by <@U0ABCchannel>"


def test_stale_notice_is_text_only():
    reply = Reply(text="That button belongs to an answer I no longer have.", ephemeral=True, kind="stale")
    msg = render(reply)
    assert [b["type"] for b in msg.blocks] == ["section"]
    assert msg.text.startswith("That button")


def test_fallback_text_for_quote_only_reply():
    msg = render(Reply(cards=(_card("Mars & <stars>"),), kind="quote"))
    assert msg.text == "“Mars &amp; &lt;stars&gt;” — Elon Musk"


def test_escape_order_does_not_double_escape():
    assert escape("&lt;") == "&amp;lt;"


def test_a_card_with_a_permalink_links_to_the_quote_page():
    page = "https://quotes.example.com/q/002%4010+21"
    msg = render(_answer(_card(permalink=page)))
    text = json.dumps(msg.blocks)
    assert f"<{page}|Link to this quote>" in text
    assert "Link to this quote" not in json.dumps(render(_answer(_card())).blocks)
