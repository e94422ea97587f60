"""Deep links land at (never after) the moment, per host."""

import pytest

from retrieval.links import moment_url, normalize_url, thumbnail_url, youtube_id


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=cFIlta1GkiE",
        "https://youtu.be/cFIlta1GkiE",
        "https://youtu.be/cFIlta1GkiE?t=30",
        "https://m.youtube.com/watch?v=cFIlta1GkiE&list=x",
        "https://www.youtube.com/live/cFIlta1GkiE",
    ],
)
def test_youtube_forms_become_one_watch_url(url):
    assert youtube_id(url) == "cFIlta1GkiE"
    assert normalize_url(url) == "https://www.youtube.com/watch?v=cFIlta1GkiE"


def test_youtube_moment_is_whole_seconds_floored():
    assert moment_url("https://youtu.be/cFIlta1GkiE", 2346.9) == "https://www.youtube.com/watch?v=cFIlta1GkiE&t=2346s"
    assert moment_url("https://youtu.be/cFIlta1GkiE", -3) == "https://www.youtube.com/watch?v=cFIlta1GkiE&t=0s"


def test_other_media_use_a_media_fragment():
    assert moment_url("https://cdn.example.org/ep1.mp3", 61.5) == "https://cdn.example.org/ep1.mp3#t=61"
    assert moment_url("https://cdn.example.org/ep1.mp3#t=5", 10) == "https://cdn.example.org/ep1.mp3#t=10"


def test_unknown_time_links_the_episode_and_no_url_links_nothing():
    assert moment_url("https://cdn.example.org/ep1.mp3", None) == "https://cdn.example.org/ep1.mp3"
    assert moment_url(None, 12.0) is None
    assert thumbnail_url("https://cdn.example.org/ep1.mp3") is None
    assert thumbnail_url("https://youtu.be/cFIlta1GkiE") == "https://i.ytimg.com/vi/cFIlta1GkiE/hqdefault.jpg"


def test_manifest_urls_must_be_http():
    with pytest.raises(ValueError, match="not an http"):
        normalize_url("ftp://example.org/x")
