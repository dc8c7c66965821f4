"""The helpline's opening hours: shown on the form, the default window is the next open slot, a window wholly
outside them is refused (issue 17, item 4)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.callbacks import hours, service
from app.callbacks.models import CallbackRequest
from app.config import get_settings
from tests.callbacks.test_callbacks import ask

UK = service.LOCAL


@pytest.fixture
def helpline_hours(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Open 10:00-12:00 every day but today, made a closed bank holiday: whatever the time the tests run."""
    today = datetime.now(UK).date()
    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_WEEKDAY", "10:00-12:00")
    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_WEEKEND", "10:00-12:00")
    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_BANK_HOLIDAY", "closed")
    monkeypatch.setenv("PORTAL_BANK_HOLIDAYS", today.isoformat())
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def local(day: date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}"


def tomorrow() -> date:
    return datetime.now(UK).date() + timedelta(days=1)


@pytest.mark.usefixtures("helpline_hours")
def test_the_form_shows_the_hours_and_suggests_the_next_open_slot(web: TestClient) -> None:
    page = web.get("/callback")
    assert page.status_code == 200
    assert "Monday to Friday" in page.text and "10:00–12:00" in page.text and "Bank holidays" in page.text
    assert "Closed" in page.text
    # Today is closed: the first open slot is tomorrow from opening, up to closing (not 02:00-05:00 tonight).
    assert f'value="{local(tomorrow(), "10:00")}"' in page.text
    assert f'value="{local(tomorrow(), "12:00")}"' in page.text


@pytest.mark.usefixtures("helpline_hours")
def test_a_window_wholly_outside_the_hours_is_refused_with_a_clear_message(web: TestClient, session: Session) -> None:
    night = ask(web, window_start=local(tomorrow(), "01:18"), window_end=local(tomorrow(), "03:18"))
    assert night.status_code == 422
    assert "The helpline is closed for all of that time" in night.text
    assert session.execute(select(CallbackRequest)).first() is None
    overlapping = ask(web, window_start=local(tomorrow(), "09:00"), window_end=local(tomorrow(), "11:00"))
    assert overlapping.status_code == 303, "a window the helpline is open for part of is kept"


@pytest.mark.usefixtures("helpline_hours")
def test_a_request_is_due_from_when_the_helpline_opens_in_its_window(web: TestClient, session: Session) -> None:
    ask(web, window_start=local(tomorrow(), "07:00"), window_end=local(tomorrow(), "11:00"))
    request = session.execute(select(CallbackRequest)).scalars().one()
    opens = datetime.fromisoformat(local(tomorrow(), "10:00")).replace(tzinfo=UK)
    assert request.due_at == opens + service.sla(request.priority)


def test_the_next_open_slot_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_WEEKDAY", "08:00-20:00")
    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_WEEKEND", "09:30-13:00")
    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_BANK_HOLIDAY", "closed")
    monkeypatch.setenv("PORTAL_BANK_HOLIDAYS", "2026-12-25,2026-12-28")
    get_settings.cache_clear()
    try:
        def slot(at: str) -> tuple[str, str]:
            found = hours.next_open_slot(datetime.fromisoformat(at).replace(tzinfo=UK), shortest=service.MIN_WINDOW)
            assert found is not None
            return found[0].astimezone(UK).strftime("%a %d %H:%M"), found[1].astimezone(UK).strftime("%H:%M")

        assert slot("2026-12-08T01:16") == ("Tue 08 08:00", "11:00"), "the issue's 01:16: from opening"
        assert slot("2026-12-08T10:16") == ("Tue 08 11:00", "14:00")
        assert slot("2026-12-08T18:40") == ("Tue 08 19:00", "20:00"), "up to closing"
        assert slot("2026-12-08T19:40") == ("Wed 09 08:00", "11:00"), "too late today: tomorrow"
        assert slot("2026-12-11T21:00") == ("Sat 12 09:30", "12:30"), "weekend hours"
        assert slot("2026-12-24T21:00") == ("Sat 26 09:30", "12:30"), "Christmas Day is a closed bank holiday"
        assert slot("2026-06-30T07:10") == ("Tue 30 08:00", "11:00"), "summer time"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_hours_that_make_no_sense_are_refused_at_start() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    for bad in ("20:00-08:00", "8-20", "08:00", "25:00-26:00"):
        with pytest.raises(ValidationError):
            Settings(HELPLINE_HOURS_WEEKDAY=bad)
    assert Settings(HELPLINE_HOURS_WEEKEND="Closed").HELPLINE_HOURS_WEEKEND == "closed"
    holidays = Settings(BANK_HOLIDAYS='["2026-12-25"]').BANK_HOLIDAYS
    assert holidays == [date(2026, 12, 25)]


@pytest.mark.usefixtures("helpline_hours")
def test_the_hours_are_in_welsh_on_the_welsh_form(web: TestClient) -> None:
    page = web.get("/callback?lang=cy")
    assert "Dydd Llun i ddydd Gwener" in page.text and "Ar gau" in page.text
    assert "Monday to Friday" not in page.text and "Closed" not in page.text


SPANS = ["closed", "00:00-24:00", "08:00-20:00", "09:30-13:00", "07:15-07:45", "19:00-21:00"]


@pytest.mark.parametrize("weekday,weekend,bank", [("08:00-20:00", "09:30-13:00", "closed"),
                                                  ("07:15-07:45", "closed", "19:00-21:00"),
                                                  ("00:00-24:00", "00:00-24:00", "00:00-24:00")])
def test_the_default_window_is_always_one_the_form_accepts(monkeypatch: pytest.MonkeyPatch, weekday: str,
                                                           weekend: str, bank: str) -> None:
    """Whatever the time (across both clock changes) and the hours, the suggested window is accepted and open."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_WEEKDAY", weekday)
    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_WEEKEND", weekend)
    monkeypatch.setenv("PORTAL_HELPLINE_HOURS_BANK_HOLIDAY", bank)
    monkeypatch.setenv("PORTAL_BANK_HOLIDAYS", "2026-03-30,2026-10-26,2026-12-25")
    get_settings.cache_clear()
    start_of_year = datetime(2026, 1, 1, tzinfo=hours.UTC)

    @settings(max_examples=300, deadline=None)
    @given(st.integers(min_value=0, max_value=365 * 24 * 60))
    def check(minutes: int) -> None:
        now = start_of_year + timedelta(minutes=minutes)
        slot = hours.next_open_slot(now, shortest=service.MIN_WINDOW)
        assert slot is not None
        start, end = slot
        assert now < start and service.MIN_WINDOW <= end - start <= hours.DEFAULT_LENGTH
        service.check_window(start, end, now=now)  # accepted: raises if not
        assert hours.first_open_moment(start, end) == start, "open from its first minute"
        spans = [hours.open_on(start.astimezone(UK).date() + timedelta(days=d)) for d in (-1, 0)]
        assert any(s is not None and s[0] <= start and end <= s[1] for s in spans), "within one opening"

    try:
        check()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
