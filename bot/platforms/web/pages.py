"""Reply -> HTML pages. Pure functions: every interpolated value goes through ``html.escape`` (attribute
values always double-quoted), links are http(s) only, and the page needs no JavaScript to search, page
on or open a passage's context; the script only adds the inline player and "Copy link" buttons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode, urlsplit

from bot.plaintext import mark
from bot.platforms.web.player import Player, player_for
from bot.reply import QuoteCard, quote_key
from retrieval.model import SourceInfo

SITE = "quotebot"
NO_SPEAKER = "speaker not marked"
CSS_PATH = "/static/web.css"
JS_PATH = "/static/web.js"


def e(value: object) -> str:
    """``value`` as HTML text or a double-quoted attribute value."""
    return escape(str(value), quote=True)


def safe_href(url: str | None) -> str | None:
    """``url`` when it is an http(s) link (so no ``javascript:`` ever becomes a link), else None."""
    if url and urlsplit(url).scheme.lower() in ("http", "https"):
        return url
    return None


def search_href(query: str, page: int = 1) -> str:
    """The no-JavaScript link to ``page`` of the answers to ``query``."""
    params = {"q": query} if page <= 1 else {"q": query, "page": str(page)}
    return "/?" + urlencode(params)


def quote_path(c: QuoteCard) -> str:
    """The site-relative permalink of the quote on ``c``."""
    return "/q/" + quote(quote_key(c), safe="@+")


def context_path(c: QuoteCard, query: str = "", page: int = 1) -> str:
    """The site-relative link to the text around ``c``'s passage (remembering the search to go back to)."""
    back = f"?{urlencode({'q': query, 'page': str(page)})}" if query else ""
    return "/context/" + quote(c.passage_key, safe="@") + back


@dataclass(frozen=True, slots=True)
class Meta:
    """OpenGraph / Twitter card data for a page that unfurls (a permalink)."""

    title: str
    description: str
    url: str
    image: str | None = None


def document(title: str, body: str, *, meta: Meta | None = None) -> str:
    """A whole HTML page around ``body`` (already HTML)."""
    head = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f'<link rel="stylesheet" href="{CSS_PATH}">',
        f'<script src="{JS_PATH}" defer></script>',
    ]
    if meta is not None:
        head += _meta_tags(meta)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n' + "\n".join(head) + "\n</head>\n<body>\n"
        + body + "\n</body>\n</html>\n"
    )


def _meta_tags(m: Meta) -> list[str]:
    tags = [
        ("name", "description", m.description),
        ("property", "og:site_name", SITE),
        ("property", "og:type", "article"),
        ("property", "og:title", m.title),
        ("property", "og:description", m.description),
        ("property", "og:url", m.url),
        ("name", "twitter:card", "summary_large_image" if m.image else "summary"),
        ("name", "twitter:title", m.title),
        ("name", "twitter:description", m.description),
    ]
    if m.image:
        tags += [("property", "og:image", m.image), ("name", "twitter:image", m.image)]
    out = [f'<meta {attr}="{e(name)}" content="{e(value)}">' for attr, name, value in tags]
    out.append(f'<link rel="canonical" href="{e(m.url)}">')
    return out


def search_form(query: str = "") -> str:
    """The question box: a GET form, so searching works without JavaScript."""
    return (
        '<form class="search" role="search" method="get" action="/">\n'
        '<label for="q">Ask the transcripts a question</label>\n'
        '<div class="row">'
        f'<input id="q" name="q" type="search" value="{e(query)}" '
        'autocomplete="off" spellcheck="false" required>'
        '<button type="submit">Search</button></div>\n'
        "</form>"
    )


def frame(main: str, *, query: str = "") -> str:
    """The page layout: site name, the question box, ``main``, and the link to the sources."""
    return (
        f'<header><p class="site">{SITE}</p></header>\n'
        f"<main>\n{search_form(query)}\n{main}\n</main>\n"
        '<footer><nav aria-label="Site"><a href="/sources">Sources: the transcripts searched</a></nav></footer>'
    )


def notice(text: str, *, role: str = "status") -> str:
    """A plain-text notice from the core (line breaks kept)."""
    if not text.strip():
        return ""
    lines = "<br>".join(e(line) for line in text.strip().splitlines())
    return f'<p class="notice" role="{e(role)}">{lines}</p>'


def card_html(c: QuoteCard, *, index: int, base_url: str, query: str = "", page: int = 1,
              heading: str = "h2", context: bool = True) -> str:
    """One answer card: the verbatim quote (matched words marked), speaker, episode, time link,
    player, Context and a permalink with "Copy link"."""
    cid = f"card-{index}"
    quote_html = mark(c.text, c.highlights, "<mark>", "</mark>", escape=e)
    speaker = c.speaker or NO_SPEAKER
    speaker_cls = "speaker" if c.speaker else "speaker unknown"
    href = safe_href(c.url)
    time_text = c.time_label or ("Open the episode" if href else "")
    if href and time_text:
        when = f'<a class="time" href="{e(href)}" rel="noopener noreferrer">{e(time_text)}</a>'
    else:
        when = f'<span class="time">{e(time_text)}</span>' if time_text else ""
    title = c.title or c.source_id
    link = quote_path(c)
    player = player_for(c)
    meta = f'<span class="{speaker_cls}">{e(speaker)}</span>' + (f" · {when}" if when else "")
    parts = [
        f'<article class="card" id="{cid}" aria-labelledby="{cid}-title">',
        f'<{heading} class="episode" id="{cid}-title">{e(title)}</{heading}>',
        f'<blockquote class="quote"><p>“{quote_html}”</p></blockquote>',
        f'<p class="meta">{meta}</p>',
        _player(player, cid, title, c.time_label),
        '<div class="tools">',
        _play_button(player, cid, c.time_label),
        f'<a class="context" href="{e(context_path(c, query, page))}">Context</a>' if context else "",
        f'<a class="permalink" href="{e(link)}">Link to this quote</a>',
        f'<button type="button" class="copy" data-link="{e(base_url.rstrip("/") + link)}" hidden>Copy link</button>',
        '<span class="copied" role="status" aria-live="polite"></span>',
        "</div>",
        "</article>",
    ]
    return "\n".join(p for p in parts if p)


def _player(player: Player | None, cid: str, title: str, time_label: str) -> str:
    if player is None:
        return ""
    label = f"{title} from {time_label}" if time_label else title
    if player.kind == "youtube":
        # filled by the script when Play is pressed, so the page loads nothing from YouTube before that
        return f'<div class="player" id="{cid}-player" hidden></div>'
    return (
        f'<div class="player" id="{cid}-player"><{player.kind} controls preload="none" src="{e(player.src)}" '
        f'aria-label="{e(label)}"></{player.kind}></div>'
    )


def _play_button(player: Player | None, cid: str, time_label: str) -> str:
    if player is None or player.kind != "youtube":
        return ""
    label = f"Play from {time_label}" if time_label else "Play"
    return (
        f'<button type="button" class="play" aria-controls="{cid}-player" data-embed="{e(player.src)}" '
        f'data-title="{e(label)}" hidden>{e(label)}</button>'
    )


def results_page(query: str, text: str, cards: Sequence[QuoteCard], *, base_url: str, page: int, first: int,
                 more: bool) -> str:
    """The answers to ``query``: the core's notice, numbered cards, and a More link to the next page."""
    body = [notice(text)]
    if cards:
        body.append(f'<h1 class="results-title">Answers to “{e(query)}”</h1>')
        items = "\n".join(
            f"<li>{card_html(c, index=first + i, base_url=base_url, query=query, page=page)}</li>"
            for i, c in enumerate(cards)
        )
        body.append(f'<ol class="results" start="{first}">\n{items}\n</ol>')
    nav = []
    if page > 1:
        nav.append(f'<a href="{e(search_href(query, page - 1))}" rel="prev">Previous results</a>')
    if more:
        nav.append(f'<a href="{e(search_href(query, page + 1))}" rel="next">More results</a>')
    if nav:
        body.append('<nav class="pager" aria-label="Results pages">' + " ".join(nav) + "</nav>")
    main = "\n".join(b for b in body if b)
    return document(f"{query} – {SITE}", frame(main, query=query))


def home_page(intro: str) -> str:
    """The search page before a question."""
    main = f'<h1>Verbatim answers from the transcripts</h1>\n<p class="intro">{e(intro)}</p>'
    return document(SITE, frame(main))


def quote_page(c: QuoteCard, *, url: str, base_url: str) -> str:
    """A quote's permalink page, with OpenGraph and Twitter card tags so a shared link unfurls."""
    episode = f"“{c.title or c.source_id}”"
    when = f" at {c.time_label}" if c.time_label else ""
    title = f"{c.speaker} in {episode}{when}" if c.speaker else f"{episode}{when}"
    meta = Meta(title=title, description=c.text, url=url, image=c.thumbnail_url)
    main = card_html(c, index=1, base_url=base_url, heading="h1")
    return document(f"{title} – {SITE}", frame(main), meta=meta)


def context_page(c: QuoteCard, *, base_url: str, query: str, page: int) -> str:
    """The text around a passage, with a way back to the answers it came from."""
    back = f'<p class="back"><a href="{e(search_href(query, page))}">Back to the answers</a></p>' if query else ""
    main = (
        f"{back}\n<h1>Context</h1>\n"
        + card_html(c, index=1, base_url=base_url, query=query, page=page, context=False)
    )
    return document(f"Context: {c.title or c.source_id} – {SITE}", frame(main, query=query))


def sources_page(sources: Iterable[SourceInfo]) -> str:
    """The transcripts searched, with dates and links."""
    items = []
    for s in sources:
        href = safe_href(s.url)
        name = f'<a href="{e(href)}" rel="noopener noreferrer">{e(s.title)}</a>' if href else e(s.title)
        bits = [name]
        if s.date:
            bits.append(f'<span class="date">{e(s.date)}</span>')
        if s.speakers:
            bits.append(f'<span class="speakers">{e(", ".join(s.speakers))}</span>')
        if not s.timed:
            bits.append('<span class="untimed">no timestamps</span>')
        items.append("<li>" + " · ".join(bits) + "</li>")
    main = "<h1>Sources</h1>\n<p>Every answer is quoted word for word from one of these transcripts.</p>\n"
    main += '<ul class="sources">\n' + "\n".join(items) + "\n</ul>" if items else "<p>No transcripts yet.</p>"
    return document(f"Sources – {SITE}", frame(main))


def message_page(title: str, text: str, *, query: str = "") -> str:
    """A page that only says something (not found, slow down, an apology with its reference)."""
    main = f"<h1>{e(title)}</h1>\n" + notice(text, role="alert")
    return document(f"{title} – {SITE}", frame(main, query=query))
