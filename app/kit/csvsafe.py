"""CSV helpers: reading untrusted files and writing exports that spreadsheets will not execute."""

from __future__ import annotations

import csv
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A member row is a few hundred characters at most; a longer line is refused without being held whole.
MAX_LINE_BYTES = 16 * 1024
BLOCK_BYTES = 1024 * 1024


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


def read_header(
    raw: IO[bytes] | Iterable[bytes], *, required: list[str], max_line: int = MAX_LINE_BYTES
) -> tuple[list[str], Iterator[tuple[int, bytes | None]]]:
    """The header (lower-cased column names) and the physical lines after it, for `parse_line`.

    Raises CsvFileError when the file has no usable header.
    """
    lines = _physical_lines(raw, max_line)
    for _line_no, data in lines:
        if data is None:
            raise CsvFileError(f"the header row is longer than {max_line:,} bytes: is this the right file?")
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise CsvFileError("the header row is not valid UTF-8") from None
        if text.strip():
            return _header(text, required), lines
    raise CsvFileError("the file is empty: expected a header row")


def parse_line(
    data: bytes | None, header: list[str], *, max_line: int = MAX_LINE_BYTES
) -> tuple[dict[str, str] | None, str | None] | None:
    """(row, None), or (None, why it cannot be read); None for a blank line."""
    if data is None:
        return None, f"line longer than {max_line:,} bytes"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "row is not valid UTF-8"
    if not text.strip():
        return None
    if '"' in text or "\x00" in text:
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            return None, f"malformed CSV: {exc}"
    else:
        cells = text.split(",")  # no quoting: what csv.reader would return, much faster
    if len(cells) != len(header):
        return None, f"expected {len(header)} cells, found {len(cells)}"
    return dict(zip(header, [c.strip() for c in cells], strict=True)), None


def _header(text: str, required: list[str]) -> list[str]:
    try:
        cells = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise CsvFileError(f"the header row is not valid CSV ({exc})") from None
    header = [h.strip().lower() for h in cells]
    odd = next((h for h in header if not h.isprintable()), None)
    if odd is not None:
        raise CsvFileError(f"the header row holds a control or invisible character in {odd!r}")
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        raise CsvFileError(f"column {repeated[0]!r} appears more than once in the header: nothing was imported")
    missing = [c for c in required if c not in header]
    if missing:
        raise CsvFileError(f"missing columns: {', '.join(missing)}")
    return header


def _blocks(raw: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    read = getattr(raw, "read", None)
    if read is not None:
        yield from iter(lambda: read(BLOCK_BYTES), b"")
    else:
        yield from raw  # pieces of any size: a generator of lines, say


def _physical_lines(raw: IO[bytes] | Iterable[bytes], max_line: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without its ending) for each line ending in LF, CRLF or CR; None for a line over
    `max_line` bytes, which is skipped without being held in memory.

    Quoted cells never contain line breaks in our formats, so one physical line is one row.
    """
    line_no = 0
    partial = b""
    overlong = False
    skip_lf = False  # the previous block ended with CR: a LF opening this one ends the same line
    for piece in _blocks(raw):
        if not piece:
            continue
        block = piece[1:] if skip_lf and piece[:1] == b"\n" else piece
        skip_lf = block[-1:] == b"\r"
        if not block:
            continue
        if partial:
            block, partial = partial + block, b""
        lines = block.splitlines()  # bytes.splitlines splits on LF, CRLF and CR only
        if block[-1:] not in (b"\n", b"\r"):
            partial = lines.pop() if lines else b""
        for line in lines:
            line_no += 1
            if overlong or len(line) > max_line:
                overlong = False
                yield line_no, None
            else:
                yield line_no, line
        if len(partial) > max_line:
            overlong, partial = True, b""
        elif overlong and partial:
            partial = b""
    if partial or overlong:
        yield line_no + 1, None if overlong or len(partial) > max_line else partial


class PendingReport:
    """A CSV report written as it goes to a new file beside its destination, and put in place only on request.

    The file is created new (O_EXCL, mode 0600), so whatever sits at the destination, a symlink included,
    is never opened or written through; `publish` renames over the destination, which replaces a link
    itself. `sync` flushes it to disk, so that a full disk is found before the work it reports commits.
    """

    def __init__(self, path: Path, header: list[str]) -> None:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        self.path = path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.tmp = Path(tmp)
        self._fh = os.fdopen(fd, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(header)
        self.rows = 0

    def write(self, row: Iterable[Any]) -> None:
        self._writer.writerow([export_cell(v) for v in row])
        self.rows += 1

    def flush(self) -> None:
        self._fh.flush()

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def publish(self) -> None:
        """Put the report at its destination, replacing whatever is there (a symlink itself, not its target)."""
        self.sync()
        self._fh.close()
        os.replace(self.tmp, self.path)

    def discard(self, *, clear_destination: bool) -> None:
        """Drop the report; with `clear_destination`, also remove an earlier run's report (or link) at the path."""
        self._fh.close()
        self.tmp.unlink(missing_ok=True)
        if clear_destination and (self.path.is_symlink() or self.path.is_file()):
            self.path.unlink()
