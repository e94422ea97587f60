"""End to end in a real browser: ``quotebot run --platform web`` on a free port with the corpus in
tests/data/web, driven by headless Debian Chromium through Selenium and the system chromedriver.

Screenshots go to each test's ``tmp_path`` (their paths are printed; run with ``-s`` to see them).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.slack_helpers import sign
from tests.e2e.web_support import WebBot, browser, ensure_chromium

YOUTUBE_ID = "tElEsCoPe01"
INTERVIEW = "Stargazing & <Telescopes>"
HOSTILE_TITLE = '"><img src=x onerror="window.__pwned=4"> Kazoo notes'
MP3 = "https://media.example.org/episodes/lighthouse.mp3"


@pytest.fixture(scope="session")
def chromium() -> None:
    try:
        ensure_chromium()
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    b = WebBot(tmp_path_factory.mktemp("web-bot")).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def chrome(chromium):
    d = browser(javascript=True)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def nojs(chromium):
    d = browser(javascript=False)
    yield d
    d.quit()


def shot(driver, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return str(path)


def seconds(label: str) -> int:
    """``"1:02:03"`` / ``"3:16"`` -> seconds."""
    total = 0
    for part in label.split(":"):
        total = total * 60 + int(part)
    return total


def cards(driver):
    return driver.find_elements(By.CSS_SELECTOR, "article.card")


def quote_of(card) -> str:
    return card.find_element(By.CSS_SELECTOR, "blockquote").text.strip().removeprefix("“").removesuffix("”")


def meta(driver, name: str) -> str | None:
    found = driver.find_elements(By.CSS_SELECTOR, f'meta[property="{name}"], meta[name="{name}"]')
    return found[0].get_attribute("content") if found else None


def loaded_resources(driver) -> list[str]:
    """Everything the page fetched, or refers to as something to fetch (sources, stylesheets, frames)."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat("
        "Array.from(document.querySelectorAll('[src], link[href]'), e => e.src || e.href))"
    )


def search(driver, base: str, query: str) -> list:
    driver.get(f"{base}/?{urlencode({'q': query})}")
    return cards(driver)


# --- answers ------------------------------------------------------------------------


def test_question_typed_with_the_keyboard_is_answered_with_cards_and_a_timestamp_link(bot, chrome, tmp_path):
    chrome.get(bot.base + "/")
    ActionChains(chrome).send_keys(Keys.TAB).perform()
    box = chrome.switch_to.active_element
    assert box.get_attribute("id") == "q", "the first Tab goes to the question box"
    assert chrome.find_element(By.CSS_SELECTOR, "label[for=q]").text == "Ask the transcripts a question"
    assert box.value_of_css_property("outline-style") != "none", "keyboard focus is visible"
    box.send_keys("what did they say about grinding the telescope mirror")
    shot(chrome, tmp_path, "typed")
    box.send_keys(Keys.ENTER)
    WebDriverWait(chrome, 15).until(lambda d: cards(d))
    assert "q=what+did+they+say" in chrome.current_url

    shown = cards(chrome)
    assert 1 <= len(shown) <= 3
    first = shown[0]
    assert "telescope" in quote_of(first).lower()
    assert first.find_element(By.CSS_SELECTOR, ".episode").text == INTERVIEW
    assert first.find_element(By.CSS_SELECTOR, ".speaker").text in ("Sam Guest", "Ada Host")
    assert first.find_elements(By.TAG_NAME, "mark"), "matched words are marked"
    for card in shown:
        link = card.find_element(By.CSS_SELECTOR, "a.time")
        href = urlsplit(link.get_attribute("href"))
        assert href.netloc == "www.youtube.com" and parse_qs(href.query)["v"] == [YOUTUBE_ID]
        assert parse_qs(href.query)["t"] == [f"{seconds(link.text)}s"], "the link starts at the time shown"

    # The player is not loaded until Play is pressed: the page fetched nothing from another host.
    assert not chrome.find_elements(By.TAG_NAME, "iframe")
    assert all(url.startswith(bot.base + "/") for url in loaded_resources(chrome))
    path = shot(chrome, tmp_path, "answers")
    time_text = first.find_element(By.CSS_SELECTOR, "a.time").text
    play = first.find_element(By.CSS_SELECTOR, "button.play")
    assert play.is_displayed() and play.text == f"Play from {time_text}"
    play.click()
    frame = WebDriverWait(chrome, 10).until(lambda d: first.find_element(By.CSS_SELECTOR, ".player iframe"))
    src = urlsplit(frame.get_attribute("src"))
    assert (src.scheme, src.netloc, src.path) == ("https", "www.youtube-nocookie.com", f"/embed/{YOUTUBE_ID}")
    assert parse_qs(src.query)["start"] == [str(seconds(time_text))]
    assert path


def test_more_and_context_work_without_javascript(bot, nojs, tmp_path):
    page1 = search(nojs, bot.base, "lighthouse")
    assert len(page1) == 3
    # Without the script the Play and Copy buttons stay hidden; every time link still works.
    assert [b.text for b in nojs.find_elements(By.CSS_SELECTOR, "button") if b.is_displayed()] == ["Search"]
    first_quotes = [quote_of(c) for c in page1]
    nojs.find_element(By.LINK_TEXT, "More results").click()
    WebDriverWait(nojs, 10).until(lambda d: "page=2" in d.current_url)
    page2 = cards(nojs)
    assert len(page2) == 3
    assert nojs.find_element(By.CSS_SELECTOR, "ol.results").get_attribute("start") == "4"
    second_quotes = [quote_of(c) for c in page2]
    assert not set(first_quotes) & set(second_quotes), "page 2 shows other passages"
    shot(nojs, tmp_path, "page-2-no-js")

    card = page2[0]
    link = card.find_element(By.CSS_SELECTOR, "a.time")
    assert urlsplit(link.get_attribute("href")).fragment == f"t={seconds(link.text)}"
    audio = card.find_element(By.CSS_SELECTOR, ".player audio")
    assert audio.get_attribute("preload") == "none"
    assert audio.get_attribute("src") == f"{MP3}#t={seconds(link.text)}"
    assert card.find_element(By.CSS_SELECTOR, ".speaker").text == "speaker not marked"

    quote = second_quotes[0]
    card.find_element(By.LINK_TEXT, "Context").click()
    WebDriverWait(nojs, 10).until(lambda d: "/context/" in d.current_url)
    assert nojs.find_element(By.TAG_NAME, "h1").text == "Context"
    around = quote_of(cards(nojs)[0])
    assert quote[:80] in around and len(around) > len(quote[:80])
    shot(nojs, tmp_path, "context-no-js")
    nojs.find_element(By.LINK_TEXT, "Back to the answers").click()
    WebDriverWait(nojs, 10).until(lambda d: "page=2" in d.current_url and "/context/" not in d.current_url)
    assert [quote_of(c) for c in cards(nojs)] == second_quotes


def test_sources_are_listed_and_linked_from_the_search_page(bot, nojs):
    nojs.get(bot.base + "/")
    nojs.find_element(By.PARTIAL_LINK_TEXT, "Sources").click()
    WebDriverWait(nojs, 10).until(lambda d: d.current_url.endswith("/sources"))
    items = [li.text for li in nojs.find_elements(By.CSS_SELECTOR, "ul.sources li")]
    assert any(INTERVIEW in t and "2024-03-02" in t for t in items)
    assert any(t.startswith("The Lighthouse Keeper") for t in items)
    assert any(HOSTILE_TITLE in t for t in items)
    link = nojs.find_element(By.LINK_TEXT, INTERVIEW)
    assert link.get_attribute("href") == f"https://www.youtube.com/watch?v={YOUTUBE_ID}"


# --- permalinks -----------------------------------------------------------------------


def test_permalink_page_has_opengraph_tags_and_copy_link_copies_it(bot, chrome, tmp_path):
    first = search(chrome, bot.base, "rings of saturn")[0]
    quote = quote_of(first)
    speaker = first.find_element(By.CSS_SELECTOR, ".speaker").text
    time_text = first.find_element(By.CSS_SELECTOR, "a.time").text
    permalink = first.find_element(By.CSS_SELECTOR, "a.permalink").get_attribute("href")
    assert re.fullmatch(re.escape(bot.base) + r"/q/interview@\d+\+\d+", permalink)

    chrome.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": bot.base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
    })
    copy = first.find_element(By.CSS_SELECTOR, "button.copy")
    assert copy.is_displayed() and copy.text == "Copy link"
    copy.click()
    WebDriverWait(chrome, 5).until(lambda d: first.find_element(By.CSS_SELECTOR, ".copied").text == "Link copied")
    copied = chrome.execute_async_script("navigator.clipboard.readText().then(arguments[0], () => arguments[0](null))")
    assert copied == permalink

    chrome.get(permalink)
    page = cards(chrome)
    assert len(page) == 1 and quote_of(page[0]) == quote
    assert meta(chrome, "og:description") == quote
    assert meta(chrome, "description") == quote
    assert meta(chrome, "og:title") == f"{speaker} in “{INTERVIEW}” at {time_text}"
    assert meta(chrome, "og:url") == chrome.current_url == permalink
    assert meta(chrome, "og:type") == "article"
    assert meta(chrome, "og:image") == f"https://i.ytimg.com/vi/{YOUTUBE_ID}/hqdefault.jpg"
    assert meta(chrome, "twitter:card") == "summary_large_image"
    assert meta(chrome, "twitter:image") == meta(chrome, "og:image")
    assert all(url.startswith(bot.base + "/") for url in loaded_resources(chrome)), "the thumbnail is not fetched"
    shot(chrome, tmp_path, "permalink")


def test_permalink_of_an_audio_quote_has_no_image_and_plays_from_its_moment(bot, chrome):
    first = search(chrome, bot.base, "lighthouse lens paris")[0]
    quote = quote_of(first)
    assert len(quote) > 300, "a quote that runs on past its passage"
    chrome.get(first.find_element(By.CSS_SELECTOR, "a.permalink").get_attribute("href"))
    assert quote_of(cards(chrome)[0]) == quote == meta(chrome, "og:description")
    assert meta(chrome, "og:image") is None
    assert meta(chrome, "twitter:card") == "summary"
    card = cards(chrome)[0]
    label = card.find_element(By.CSS_SELECTOR, "a.time").text
    assert meta(chrome, "og:title") == f"“The Lighthouse Keeper” at {label}", "no speaker is named when unknown"
    when = seconds(label)
    assert card.find_element(By.CSS_SELECTOR, "audio").get_attribute("src") == f"{MP3}#t={when}"


def test_unknown_permalink_is_not_found_and_a_malformed_one_is_a_bad_request(bot):
    for path, status in (("/q/interview@999999+20", 404), ("/q/not-a-key", 400), ("/?q=x&page=zero", 400)):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bot.base + path, timeout=10)
        assert e.value.code == status, path
        assert "text/html" in e.value.headers["Content-Type"]


# --- hostile text ------------------------------------------------------------------------


def _nothing_injected(driver) -> None:
    assert driver.execute_script("return window.__pwned === undefined")
    assert not driver.find_elements(By.TAG_NAME, "img")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(driver.current_url))
    scripts = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
    assert scripts == [origin + "/static/web.js"], "the page's own script is the only one"


def test_hostile_transcript_text_and_title_are_shown_as_text(bot, chrome, tmp_path):
    found = search(chrome, bot.base, "kazoo whiteboard")
    assert found
    card = found[0]
    text = quote_of(card)
    assert "<script>window.__pwned=1</script>" in text
    assert '"><img src=x onerror="window.__pwned=2">' in text
    assert card.find_element(By.CSS_SELECTOR, ".episode").text == HOSTILE_TITLE
    _nothing_injected(chrome)
    shot(chrome, tmp_path, "hostile-transcript")

    chrome.get(card.find_element(By.CSS_SELECTOR, "a.permalink").get_attribute("href"))
    assert meta(chrome, "og:description") == text
    assert HOSTILE_TITLE in meta(chrome, "og:title")
    _nothing_injected(chrome)


def test_hostile_query_is_shown_as_text(bot, chrome, tmp_path):
    hostile = '"><img src=x onerror="window.__pwned=5"><script>window.__pwned=6</script> kazoo'
    search(chrome, bot.base, hostile)
    assert chrome.find_element(By.ID, "q").get_attribute("value") == hostile
    assert hostile in chrome.find_element(By.TAG_NAME, "h1").text
    assert hostile in chrome.title
    _nothing_injected(chrome)
    unknown = '"><svg onload="alert(7)"></svg><b>zzqx</b>'
    assert not search(chrome, bot.base, unknown), "nothing in the corpus matches these words"
    assert unknown in chrome.find_element(By.CSS_SELECTOR, ".notice").text
    assert not chrome.find_elements(By.CSS_SELECTOR, "main svg, main b")
    _nothing_injected(chrome)
    shot(chrome, tmp_path, "hostile-query")


# --- HTTP -----------------------------------------------------------------------------------


def test_pages_carry_a_strict_content_security_policy(bot):
    with urllib.request.urlopen(bot.base + "/?q=telescope", timeout=10) as r:
        csp = r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    rules = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert rules["default-src"] == "'none'"
    assert rules["script-src"] == "'self'" and rules["style-src"] == "'self'"
    assert rules["frame-src"] == "https://www.youtube-nocookie.com"
    assert rules["frame-ancestors"] == "'none'" and rules["img-src"] == "'self'"


def test_clients_over_the_rate_limit_are_told_to_wait(tmp_path):
    bot = WebBot(tmp_path, env={"QUOTEBOT_RATE_PER_MINUTE": "1", "QUOTEBOT_RATE_BURST": "2"}).start()
    try:
        for _ in range(2):
            with urllib.request.urlopen(bot.base + "/?q=telescope", timeout=10) as r:
                assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bot.base + "/?q=telescope", timeout=10)
        assert e.value.code == 429
        assert int(e.value.headers["Retry-After"]) >= 1
        assert "faster than I can keep up" in e.value.read().decode()
    finally:
        bot.stop()


def test_web_page_and_slack_events_share_one_server(tmp_path):
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    env = {"SLACK_BOT_TOKEN": "xoxb-test-0000-web", "SLACK_SIGNING_SECRET": secret,
           "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    bot = WebBot(tmp_path, env=env, platforms=("web", "slack")).start()
    try:
        with urllib.request.urlopen(bot.base + "/?q=telescope", timeout=10) as r:
            assert r.status == 200 and "Answers to “telescope”" in r.read().decode()
        body = '{"token": "legacy", "challenge": "c0ffee", "type": "url_verification"}'
        request = urllib.request.Request(bot.base + "/slack/events", data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json", **sign(body, secret=secret)})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200 and "c0ffee" in r.read().decode()
        with urllib.request.urlopen(bot.base + "/healthz", timeout=10) as r:
            assert set(json.loads(r.read())["platforms"]) >= {"web", "slack"}
    finally:
        bot.stop()


def test_a_source_without_a_link_shows_its_time_as_text_and_its_permalink_works(bot, nojs):
    # archive/zeppelin.srt is not in the manifest: titled from its file name, no URL.
    card = search(nojs, bot.base, "zeppelin harbour")[0]
    assert not card.find_elements(By.CSS_SELECTOR, "a.time, .player")
    assert card.find_element(By.CSS_SELECTOR, ".time").text == "0:03"
    quote = quote_of(card)
    nojs.get(card.find_element(By.CSS_SELECTOR, "a.permalink").get_attribute("href"))
    assert quote_of(cards(nojs)[0]) == quote
    assert meta(nojs, "og:image") is None and meta(nojs, "og:description") == quote
