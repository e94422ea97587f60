"""The page's stylesheet and script (served from this package, so the page loads nothing from elsewhere),
and its Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterable

from bot.platforms.web.player import YOUTUBE_EMBED

CSS = """\
:root { color-scheme: light dark; --accent: #1d4ed8; --muted: #555; --card: #f6f7f9; --line: #d0d4da; }
@media (prefers-color-scheme: dark) { :root { --accent: #93b4ff; --muted: #b5b5b5; --card: #1d2026; --line: #3a3f48; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 48rem; padding: 1rem; font: 1.05rem/1.55 system-ui, sans-serif; }
header .site { font-weight: 700; letter-spacing: .02em; margin: 0 0 .5rem; }
h1 { font-size: 1.35rem; margin: 1.2rem 0 .6rem; }
form.search { margin: 0 0 1.2rem; }
form.search label { display: block; font-weight: 600; margin-bottom: .3rem; }
form.search .row { display: flex; gap: .5rem; }
form.search input { flex: 1; min-width: 0; font: inherit; padding: .45rem .6rem; border: 2px solid var(--line);
  border-radius: .4rem; }
button { font: inherit; padding: .4rem .8rem; border-radius: .4rem; border: 2px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; }
.tools button { background: transparent; color: var(--accent); padding: .15rem .6rem; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
ol.results { list-style: none; padding: 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .6rem; padding: .8rem 1rem;
  margin: 0 0 1rem; }
.card .episode { font-size: 1rem; margin: 0 0 .4rem; color: var(--muted); }
.card blockquote { margin: 0; font-size: 1.1rem; white-space: pre-line; }
.card blockquote p { margin: 0 0 .5rem; }
mark { background: #fde68a; color: #111; padding: 0 .1em; border-radius: .15em; }
.meta { margin: 0 0 .5rem; }
.speaker { font-weight: 600; }
.speaker.unknown { font-weight: 400; font-style: italic; color: var(--muted); }
.tools { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; }
.player iframe, .player video { width: 100%; aspect-ratio: 16 / 9; border: 0; margin: .3rem 0 .6rem; }
.player audio { width: 100%; margin: .3rem 0 .6rem; }
.copied { color: var(--muted); font-size: .9rem; }
.pager { display: flex; gap: 1.5rem; margin: 1rem 0; }
.notice { padding: .5rem .8rem; border-left: 4px solid var(--accent); background: var(--card); }
footer { margin-top: 2rem; border-top: 1px solid var(--line); padding-top: .6rem; }
ul.sources li { margin-bottom: .4rem; }
"""

# No inline script anywhere: this file is the page's only script (``script-src 'self'``). It turns the
# hidden Play and Copy link buttons on; without it the time links and the permalinks still work.
JS = """\
"use strict";
(function () {
  function play(button) {
    var box = document.getElementById(button.getAttribute("aria-controls"));
    if (!box) { return; }
    var frame = document.createElement("iframe");
    frame.src = button.dataset.embed;
    frame.title = button.dataset.title;
    frame.allow = "autoplay; encrypted-media; picture-in-picture; fullscreen";
    frame.referrerPolicy = "strict-origin-when-cross-origin";
    box.replaceChildren(frame);
    box.hidden = false;
    button.setAttribute("aria-expanded", "true");
    frame.focus();
  }
  function copy(button) {
    var status = button.parentNode.querySelector(".copied");
    navigator.clipboard.writeText(button.dataset.link).then(function () {
      status.textContent = "Link copied";
    }, function () {
      status.textContent = "Could not copy: use the link beside it";
    });
  }
  function start() {
    document.querySelectorAll("button.play").forEach(function (b) {
      b.hidden = false;
      b.setAttribute("aria-expanded", "false");
      b.addEventListener("click", function () { play(b); });
    });
    if (navigator.clipboard && window.isSecureContext) {
      document.querySelectorAll("button.copy").forEach(function (b) {
        b.hidden = false;
        b.addEventListener("click", function () { copy(b); });
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
"""


def content_security_policy(media_origins: Iterable[str] = ()) -> str:
    """A strict policy: this site's own script and style only, no inline code, images from here only,
    frames from YouTube's no-cookie embed host only, media from the sources shown on the page."""
    media = " ".join(sorted(set(media_origins))) or "'none'"
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        f"media-src {media}",
        f"frame-src {YOUTUBE_EMBED}",
        "connect-src 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ])
