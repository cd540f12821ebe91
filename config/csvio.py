"""CSV in and out for the seller UI: reading an uploaded or pasted file safely, and streaming exports.

Reading turns anything a seller may send (a spreadsheet's export with a byte-order mark, semicolons
instead of commas, a file in the wrong encoding, a binary file, a huge file) into either rows of
text or one :class:`CsvError` with a message the page shows; never an exception the page did not
expect. Writing escapes cells a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``
first) and streams: rows are produced one at a time from a database iterator, so an export of a
million order lines costs the memory of one chunk.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse

#: Largest request an import page reads (file or pasted text, and the form around it). A seller's
#: 10,000-product file is about half a megabyte; Django's own limit for form fields is 2.5 MB.
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
#: A cell longer than this is not a value a seller typed; the csv module's own limit is 128 KB.
MAX_CELL_CHARS = 10_000
#: The first characters that make a spreadsheet treat a cell as a formula (tab and carriage return
#: too: some spreadsheets strip them and then read what follows).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Characters of CSV sent per response chunk.
STREAM_BLOCK_CHARS = 64 * 1024


class CsvError(ValueError):
    """The file as a whole cannot be read; the message says what to do."""


@dataclass(frozen=True)
class CsvRow:
    """One non-blank record: its line number in the file (as a spreadsheet counts) and its cells."""

    line: int
    cells: list[str]


def too_large(request: HttpRequest, limit: int = MAX_UPLOAD_BYTES) -> bool:
    """Whether the request body is larger than an import accepts, known before reading any of it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > limit


def too_large_message(limit: int = MAX_UPLOAD_BYTES) -> str:
    return (
        f"The file is larger than {limit // (1024 * 1024)} MB; split it into smaller files and import each."
    )


def decode(data: bytes) -> str:
    """Bytes of a CSV file as text: UTF-8 (with or without a byte-order mark) or UTF-16 with its
    mark (a spreadsheet's "Unicode text"). Anything else is refused with a message, not guessed:
    a misread encoding would store wrong names without anyone noticing."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise CsvError(
                "The file says it is UTF-16 text but is not; save it again as CSV UTF-8."
            ) from None
    else:
        if b"\x00" in data:
            raise CsvError(
                "This is not a CSV file (it holds binary data); export the sheet as CSV and try again."
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise CsvError(
                f"The file is not UTF-8 text (line {line} holds a character in another encoding). "
                "Save it as “CSV UTF-8” in your spreadsheet and try again."
            ) from None
    return text.lstrip("\ufeff")


def text_from_request(request: HttpRequest, *, file_field: str = "file", text_field: str = "csv") -> str:
    """The CSV a form sent: the uploaded file if there is one, else the pasted text."""
    upload = request.FILES.get(file_field)
    if upload is not None:
        if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
            raise CsvError(too_large_message())
        return decode(upload.read(MAX_UPLOAD_BYTES + 1))
    text = request.POST.get(text_field, "")
    if "\x00" in text:
        raise CsvError("This is not CSV text (it holds binary data); export the sheet as CSV and try again.")
    return text.lstrip("\ufeff")


def _delimiter(first_line: str) -> str:
    """Comma, semicolon or tab: whichever the first line (outside quotes) holds most of. Only the
    delimiter is guessed; quoting stays the standard one (the csv module's sniffer also guesses
    quoting rules, and misreads a doubled quote as an escape)."""
    counts = {",": 0, ";": 0, "\t": 0}
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda char: counts[char])
    return best if counts[best] else ","


def read_rows(text: str, *, max_rows: int) -> list[CsvRow]:
    """The file's non-blank records (header included), at most ``max_rows`` of them.

    The delimiter is taken from the file (comma, semicolon or tab: spreadsheets in many locales
    write semicolons). Cells are stripped, and a leading apostrophe that protected a formula
    character on export is removed again, so an exported file imports unchanged.
    """
    if not text.strip():
        raise CsvError("The file is empty.")
    first_line = text.split("\n", 1)[0][:4096]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line), strict=True)
    rows: list[CsvRow] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= max_rows:
                raise CsvError(
                    f"The file has more than {max_rows - 1} rows; split it into files of at most "
                    f"{max_rows - 1} rows and import each."
                )
            if any(len(cell) > MAX_CELL_CHARS for cell in cells):
                raise CsvError(f"Line {reader.line_num} has a cell longer than {MAX_CELL_CHARS} characters.")
            rows.append(CsvRow(line=reader.line_num, cells=[unescape_cell(cell.strip()) for cell in cells]))
    except csv.Error as exc:
        raise CsvError(f"Line {reader.line_num} cannot be read as CSV ({exc}); check its quotes.") from None
    if not rows:
        raise CsvError("The file is empty.")
    return rows


def header_key(cell: str) -> str:
    """A header cell reduced to its letters ("Order #", "order_number" → "order", "ordernumber")."""
    return "".join(ch for ch in cell.lower() if ch.isalpha())


def escape_cell(value: Any) -> str:
    """A cell as text a spreadsheet shows rather than runs (a leading apostrophe before ``=`` ...)."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """:func:`escape_cell` undone, for a file that came back from an export."""
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@":
        return text[1:]
    return text


class _Echo:
    """A file whose ``write`` returns what it was given: ``csv.writer`` then yields lines."""

    def write(self, value: str) -> str:
        return value


def stream_csv(
    filename: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    escape: Callable[[Any], str] = escape_cell,
) -> StreamingHttpResponse:
    """A CSV download produced row by row (pass a queryset's ``iterator()``: constant memory).

    A byte-order mark goes first so spreadsheets read the file as UTF-8; :func:`decode` removes it.
    """
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        # The header goes out before the first row is read; rows then go in blocks of about 64 KB
        # (one response chunk per row costs more than the row).
        yield "\ufeff" + writer.writerow(list(header))
        block: list[str] = []
        size = 0
        for row in rows:
            line = writer.writerow([escape(value) for value in row])
            block.append(line)
            size += len(line)
            if size >= STREAM_BLOCK_CHARS:
                yield "".join(block)
                block, size = [], 0
        if block:
            yield "".join(block)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
