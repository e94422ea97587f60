"""The web page's HTML builders on hostile cards, its players and its permalink keys (no browser, no server)."""

from __future__ import annotations

from html.parser import HTMLParser

from bot.platforms.web import pages
from bot.platforms.web.assets import content_security_policy
from bot.platforms.web.player import player_for, start_seconds
from bot.platforms.web.quotes import split_key
from bot.reply import QuoteCard, permalink, quote_key
from retrieval.model import SourceInfo

EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    return read(html).tags


def read(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    return p


def hostile_card(**kw) -> QuoteCard:
    values = dict(text=f"said {EVIL} there", title=f"Episode {EVIL}", source_id="ep", passage_key=f"ep{EVIL}@12",
                  speaker=f"Sam {EVIL}", time_label=f"1:00{EVIL}", url="javascript:alert(3)",
                  highlights=((0, 4), (5, 12)))
    values.update(kw)
    return QuoteCard(**values)


def test_hostile_text_in_every_field_of_a_card_becomes_text():
    html = pages.card_html(hostile_card(), index=1, base_url="https://q.example", query=EVIL)
    tags = parse(html)
    assert {t for t, _ in tags} <= {"article", "h2", "blockquote", "p", "mark", "span", "div", "a", "button"}
    assert not any(name.startswith("on") for _, attrs in tags for name in attrs)
    assert not any("javascript:" in (v or "") for _, attrs in tags for v in attrs.values())
    shown = "".join(read(html).text)  # what a reader sees
    for value in (f"Episode {EVIL}", f"said {EVIL} there", f"Sam {EVIL}", f"1:00{EVIL}"):
        assert value in shown
    assert "<mark>said</mark>" in html


def test_permalink_page_meta_tags_escape_the_quote_and_title():
    card = hostile_card(url="https://youtu.be/abcdefghijk?t=60", thumbnail_url="https://i.ytimg.com/vi/abcdefghijk/hqdefault.jpg")
    html = pages.quote_page(card, url="https://q.example/q/x", base_url="https://q.example")
    metas = {a.get("property") or a.get("name"): a.get("content") for t, a in parse(html) if t == "meta"}
    assert metas["og:description"] == card.text
    assert metas["og:title"] == f"Sam {EVIL} in “Episode {EVIL}” at 1:00{EVIL}"
    assert metas["twitter:card"] == "summary_large_image"
    assert not any(t in ("script", "img") and "src" in a and "static" not in (a["src"] or "") for t, a in parse(html))


def test_sources_list_links_only_http_urls():
    html = pages.sources_page([SourceInfo("a", EVIL, url="javascript:alert(1)"),
                               SourceInfo("b", "Fine", url="https://example.org/ep.mp3", timed=True)])
    hrefs = [a["href"] for t, a in parse(html) if t == "a"]
    assert "https://example.org/ep.mp3" in hrefs and not any("javascript" in h for h in hrefs)
    assert "&lt;script&gt;" in html


def test_players_start_at_the_moment_of_the_link():
    def c(url):
        return QuoteCard(text="x", title="t", source_id="s", passage_key="s@0", url=url)

    yt = player_for(c("https://www.youtube.com/watch?v=abcdefghijk&t=754s"))
    assert (yt.kind, yt.start, yt.origin) == ("youtube", 754, "https://www.youtube-nocookie.com")
    assert yt.src.startswith("https://www.youtube-nocookie.com/embed/abcdefghijk?start=754")
    audio = player_for(c("https://cdn.example.org/ep/12.MP3#t=61"))
    assert (audio.kind, audio.src, audio.origin) == ("audio", "https://cdn.example.org/ep/12.MP3#t=61",
                                                     "https://cdn.example.org")
    assert player_for(c("https://cdn.example.org/v.webm")).kind == "video"
    assert player_for(c("https://example.org/episode-page")) is None
    assert player_for(c(None)) is None
    assert start_seconds("https://x.org/a.mp3") is None


def test_quote_keys_round_trip_through_the_permalink():
    card = QuoteCard(text="abc def", title="t", source_id="talks/ep 1", passage_key="talks/ep 1@3140")
    assert quote_key(card) == "talks/ep 1@3140+7"
    assert permalink("https://q.example/", card) == "https://q.example/q/talks%2Fep%201@3140+7"
    assert split_key(quote_key(card)) == ("talks/ep 1@3140", 7)
    assert split_key("ep@12") == ("ep@12", None)
    for bad in ("ep", "ep@x", "ep@12+0", "ep@12+x", "ep@12+99999"):
        assert split_key(bad) is None, bad


def test_policy_allows_media_only_from_the_players_on_the_page():
    assert "media-src 'none'" in content_security_policy()
    assert "media-src https://a.example https://b.example;" in content_security_policy(
        ["https://b.example", "https://a.example", "https://b.example"])
