"""The helpline's opening hours (settings, UK time): the default window for a callback and whether a window
can be kept at all. Weekdays, weekends and bank holidays each have their hours, or are closed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from app.config import Settings, get_settings
from app.kit.clock import UK as LOCAL
from app.kit.clock import UTC

DEFAULT_LENGTH = timedelta(hours=3)
# How far ahead the next open slot is looked for (a helpline closed for longer gets no default window).
LOOK_AHEAD_DAYS = 31


def _spec(day: date, settings: Settings) -> str:
    if day in settings.BANK_HOLIDAYS:
        return settings.HELPLINE_HOURS_BANK_HOLIDAY
    return settings.HELPLINE_HOURS_WEEKEND if day.weekday() >= 5 else settings.HELPLINE_HOURS_WEEKDAY


def _at(day: date, hhmm: str) -> datetime:
    if hhmm == "24:00":
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL)
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=LOCAL)


def open_on(day: date, settings: Settings | None = None) -> tuple[datetime, datetime] | None:
    """When the helpline opens and closes on this (UK) day, as UTC; None when it is closed."""
    spec = _spec(day, settings or get_settings())
    if spec == "closed":
        return None
    opens, _, closes = spec.partition("-")
    return _at(day, opens.strip()).astimezone(UTC), _at(day, closes.strip()).astimezone(UTC)


def _open_spans(start: datetime, end: datetime, settings: Settings) -> Iterator[tuple[datetime, datetime]]:
    day = start.astimezone(LOCAL).date()
    last = end.astimezone(LOCAL).date()
    while day <= last:
        span = open_on(day, settings)
        if span is not None and span[0] < end and span[1] > start:
            yield max(span[0], start), min(span[1], end)
        day += timedelta(days=1)


def first_open_moment(start: datetime, end: datetime) -> datetime | None:
    """The first moment of [start, end) when the helpline is open; None if it is closed throughout."""
    return next((opens for opens, _ in _open_spans(start, end, get_settings())), None)


def next_open_slot(now: datetime, *, shortest: timedelta) -> tuple[datetime, datetime] | None:
    """The default window: from the next whole hour the helpline is open, up to three hours, before it closes."""
    settings = get_settings()
    after = (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    day = now.astimezone(LOCAL).date()
    for _ in range(LOOK_AHEAD_DAYS):
        span = open_on(day, settings)
        if span is not None:
            start = max(span[0], after)
            # An opening at a quarter past starts the window then; otherwise on the hour.
            end = min(start + DEFAULT_LENGTH, span[1])
            if end - start >= shortest:
                return start, end
        day += timedelta(days=1)
    return None


def weekly_hours() -> list[tuple[str, str | None]]:
    """(which days, "HH:MM-HH:MM" or None when closed) for the form: weekdays, weekends, bank holidays."""
    settings = get_settings()
    return [(kind, None if spec == "closed" else spec.replace("-", "–"))
            for kind, spec in (("weekday", settings.HELPLINE_HOURS_WEEKDAY),
                               ("weekend", settings.HELPLINE_HOURS_WEEKEND),
                               ("bank_holiday", settings.HELPLINE_HOURS_BANK_HOLIDAY))]
