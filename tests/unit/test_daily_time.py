"""Due-time math for daily posts: local wall times in IANA zones, converted afresh each day."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.daily import BadInput, due_at, looks_like_time, next_post_at, parse_time, resolve_zone
from bot.store import Subscription

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 3, 30), "2024-03-30 08:00"),  # CET, +01:00
        (date(2024, 3, 31), "2024-03-31 07:00"),  # spring forward that night: CEST, +02:00
        (date(2024, 4, 1), "2024-04-01 07:00"),
        (date(2024, 10, 26), "2024-10-26 07:00"),
        (date(2024, 10, 27), "2024-10-27 08:00"),  # fall back that night: CET again
    ],
)
def test_nine_oclock_stays_nine_oclock_in_berlin_across_dst(day: date, expected: str) -> None:
    due = due_at(day, "09:00", BERLIN)
    assert due == utc(expected)
    assert due.astimezone(BERLIN).strftime("%H:%M") == "09:00"


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 3, 9), "2024-03-09 14:00"),  # EST, -05:00
        (date(2024, 3, 10), "2024-03-10 13:00"),  # EDT from 02:00 that morning
        (date(2024, 11, 2), "2024-11-02 13:00"),
        (date(2024, 11, 3), "2024-11-03 14:00"),  # EST again from 02:00
    ],
)
def test_nine_oclock_stays_nine_oclock_in_new_york_across_dst(day: date, expected: str) -> None:
    due = due_at(day, "09:00", NEW_YORK)
    assert due == utc(expected)
    assert due.astimezone(NEW_YORK).strftime("%H:%M") == "09:00"


@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected_utc", "expected_local"),
    [
        (BERLIN, date(2024, 3, 31), "02:30", "2024-03-31 01:00", "03:00"),
        (BERLIN, date(2024, 3, 31), "02:00", "2024-03-31 01:00", "03:00"),
        (BERLIN, date(2024, 3, 31), "02:59", "2024-03-31 01:00", "03:00"),
        (NEW_YORK, date(2024, 3, 10), "02:15", "2024-03-10 07:00", "03:00"),
    ],
)
def test_a_time_skipped_by_spring_forward_is_due_at_the_first_minute_after_the_gap(
    zone: ZoneInfo, day: date, wall: str, expected_utc: str, expected_local: str
) -> None:
    due = due_at(day, wall, zone)
    assert due == utc(expected_utc)
    assert due.astimezone(zone).strftime("%H:%M") == expected_local
    assert due.astimezone(zone).date() == day


@pytest.mark.parametrize(
    ("zone", "day", "wall", "first", "second"),
    [
        (BERLIN, date(2024, 10, 27), "02:30", "2024-10-27 00:30", "2024-10-27 01:30"),
        (NEW_YORK, date(2024, 11, 3), "01:30", "2024-11-03 05:30", "2024-11-03 06:30"),
    ],
)
def test_a_time_that_happens_twice_is_due_at_its_first_occurrence(
    zone: ZoneInfo, day: date, wall: str, first: str, second: str
) -> None:
    due = due_at(day, wall, zone)
    assert due == utc(first)
    # Both instants really show that wall time locally; only the first one counts.
    assert utc(second).astimezone(zone).strftime("%H:%M") == wall
    assert due.astimezone(zone).strftime("%H:%M") == wall


def test_a_whole_missing_day_posts_at_the_start_of_the_next_valid_day() -> None:
    # Samoa skipped 30 December 2011 entirely (UTC-10 -> UTC+14).
    apia = ZoneInfo("Pacific/Apia")
    due = due_at(date(2011, 12, 30), "09:00", apia)
    assert due.astimezone(apia) == datetime(2011, 12, 31, 0, 0, tzinfo=apia)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("9", "09:00"), ("9:05", "09:05"), ("09:05", "09:05"), ("17:30", "17:30"), ("9am", "09:00"),
     ("12am", "00:00"), ("12pm", "12:00"), ("5:30pm", "17:30"), ("0:00", "00:00"), ("23:59", "23:59")],
)
def test_times_people_type_are_understood(typed: str, expected: str) -> None:
    assert looks_like_time(typed)
    assert parse_time(typed) == expected


@pytest.mark.parametrize("typed", ["25:00", "9:60", "24:00", "13pm", "0am", "9:5"])
def test_impossible_times_get_a_message_that_says_what_to_type(typed: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_time(typed)
    assert f"“{typed}” is not a time of day" in str(err.value)
    assert "HH:MM" in str(err.value)


def test_words_that_are_not_times_are_left_for_the_topic() -> None:
    assert not looks_like_time("3d")
    assert not looks_like_time("mars")


def test_zone_names_are_matched_in_any_letter_case_and_unknown_ones_are_named() -> None:
    assert resolve_zone("Europe/Berlin") == "Europe/Berlin"
    assert resolve_zone("america/new_york") == "America/New_York"
    assert resolve_zone("utc") == "UTC"
    with pytest.raises(BadInput) as err:
        resolve_zone("Europe/Berlinn")
    assert "Unknown time zone “Europe/Berlinn”" in str(err.value)


def _sub(local_time: str, tz: str, since: datetime) -> Subscription:
    return Subscription(
        id=1, platform="discord", channel_id="c", guild_id=None, local_time=local_time, tz=tz, topic=None,
        enabled=True, disabled_reason=None, created_by="u", active_since=since, created_at=since, updated_at=since,
    )


def test_next_post_skips_days_already_handled_and_days_before_the_subscription() -> None:
    sub = _sub("09:00", "Europe/Berlin", since=utc("2024-03-30 09:30"))  # subscribed after today's time
    grace = timedelta(minutes=180)
    assert next_post_at(sub, utc("2024-03-30 09:31"), set(), grace) == utc("2024-03-31 07:00")
    # Due within the grace window and not posted yet: due now.
    now = utc("2024-03-31 07:30")
    assert next_post_at(sub, now, set(), grace) == now
    # Already posted today: tomorrow.
    assert next_post_at(sub, now, {date(2024, 3, 31)}, grace) == utc("2024-04-01 07:00")
