"""CSV helpers: reading untrusted files and writing exports that spreadsheets will not execute."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from typing import IO, Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class CsvFileError(ValueError):
    """The file as a whole cannot be read (no header, wrong columns, not UTF-8...)."""


def starts_like_formula(value: str) -> bool:
    return value.startswith(FORMULA_PREFIXES)


def export_cell(value: Any) -> str:
    """Neutralise a value for a CSV export (OWASP: prefix formula triggers with a quote)."""
    text = "" if value is None else str(value)
    return "'" + text if starts_like_formula(text) else text


def write_export(stream: IO[str], header: list[str], rows: Iterable[Iterable[Any]]) -> int:
    writer = csv.writer(stream)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([export_cell(v) for v in row])
        count += 1
    return count


def read_rows(
    raw: IO[bytes], *, required: list[str]
) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """Stream (line number, row, error) from a UTF-8 CSV, tolerating a BOM and CRLF.

    A row that cannot be decoded is yielded with row None and the reason, so one bad row never
    stops the rest of the file from being checked.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    header: list[str] | None = None
    line_no = 0
    for raw_line in _physical_lines(raw):
        line_no += 1
        try:
            text = decoder.decode(raw_line)
        except UnicodeDecodeError:
            decoder.reset()
            if header is None:
                raise CsvFileError("the header row is not valid UTF-8") from None
            yield line_no, None, "row is not valid UTF-8"
            continue
        if header is None:
            if not text.strip():
                continue
            header = [h.strip().lower() for h in next(csv.reader([text]))]
            missing = [c for c in required if c not in header]
            if missing:
                raise CsvFileError(f"missing columns: {', '.join(missing)}")
            continue
        if not text.strip():
            continue
        try:
            cells = next(csv.reader([text]))
        except csv.Error as exc:
            yield line_no, None, f"malformed CSV: {exc}"
            continue
        if len(cells) != len(header):
            yield line_no, None, f"expected {len(header)} cells, found {len(cells)}"
            continue
        yield line_no, dict(zip(header, (c.strip() for c in cells), strict=True)), None
    if header is None:
        raise CsvFileError("the file is empty: expected a header row")


def _physical_lines(raw: IO[bytes]) -> Iterator[bytes]:
    # Quoted cells never contain newlines in our formats; one physical line is one row.
    for line in raw:
        yield line.rstrip(b"\r\n")
