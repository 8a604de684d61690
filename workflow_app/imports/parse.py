"""Reading an uploaded performance pack or finance return (CSV or XLSX). Pure: no database.

Layouts, recognised from the header row (case-insensitive, spaces trimmed):

* performance, long: ``unit_code, measure_code, month, actual[, trajectory]``
* performance, wide: ``unit_code, measure_code, kind`` (``actual`` or ``trajectory``), then
  one column per month (``2026-04``, ``2026-05``, ...)
* finance, long: ``unit_code, month, ytd_variance, forecast_variance[, budget]`` in GBP,
  positive = overspend (DOMAIN.md decision 5)

A blank cell means "no value". Row numbers are as the person sees them in their
spreadsheet: the header is row 1.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from typing import Any

from workflow_app.services.errors import ServiceError

PERFORMANCE = "performance"
FINANCE = "finance"
KINDS = (PERFORMANCE, FINANCE)

PERFORMANCE_LONG = ("unit_code", "measure_code", "month", "actual")
PERFORMANCE_LONG_OPTIONAL = ("trajectory",)
PERFORMANCE_WIDE = ("unit_code", "measure_code", "kind")
FINANCE_LONG = ("unit_code", "month", "ytd_variance", "forecast_variance")
FINANCE_LONG_OPTIONAL = ("budget",)
WIDE_KINDS = ("actual", "trajectory")

# A 10 MB upload cannot hold more than this many sensible rows; more means a runaway sheet.
MAX_ROWS = 200_000
# An .xlsx file is a zip archive: refuse one that unpacks to more than this (a "zip bomb"),
# before opening it. A 200,000-row return unpacks to about 60 MB. Python's zipfile never
# inflates a member past its declared size, so checking the declared sizes is enough.
MAX_XLSX_UNPACKED_BYTES = 120 * 1024 * 1024
MAX_XLSX_MEMBERS = 1000

EXPECTED_HEADERS = (
    "Expected one of these header rows: "
    "'unit_code, measure_code, month, actual, trajectory' (performance, one row per month); "
    "'unit_code, measure_code, kind, 2026-04, 2026-05, ...' (performance, months as columns); "
    "'unit_code, month, ytd_variance, forecast_variance, budget' (finance). "
    "Download a template from the upload page."
)

MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?$")
MONTH_NAMES = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
NAMED_MONTH_RE = re.compile(r"^([a-z]+)[\s\-/]+(\d{4})$")


class UnreadableFile(ServiceError):
    """The file is not a CSV or XLSX file we can read; the message says what to do."""


@dataclass(frozen=True)
class Number:
    """A number read from a cell, with the signs it was written with."""

    value: Decimal
    text: str
    percent: bool = False
    pounds: bool = False


@dataclass
class Problem:
    """One thing wrong with the file, by row and column (row None: the whole file)."""

    message: str
    row: int | None = None
    column: str | None = None
    sheet: str | None = None
    value: str = ""
    # The row's identifying cells, for the rejects report.
    unit_code: str = ""
    measure_code: str = ""
    month: str = ""
    # True for problems found against the database (re-checked at load time).
    from_database: bool = False

    def where(self) -> str:
        parts = []
        if self.sheet:
            parts.append(f"Sheet '{self.sheet}'")
        if self.row is not None:
            parts.append(f"row {self.row}" if parts else f"Row {self.row}")
        if self.column:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "unit_code": self.unit_code,
            "measure_code": self.measure_code,
            "month": self.month,
            "message": self.message,
            "text": str(self),
        }


@dataclass
class ParsedRow:
    """One value set for one unit (and measure) and one month.

    A wide-layout spreadsheet row gives one ``ParsedRow`` per month column that has a value.
    ``columns`` maps each field to the column header the person wrote, for messages.
    """

    row_number: int
    sheet: str | None
    kind: str
    layout: str
    unit_code: str
    month_text: str
    month: date | None
    measure_code: str = ""
    actual: Number | None = None
    trajectory: Number | None = None
    ytd_variance: Number | None = None
    forecast_variance: Number | None = None
    budget: Number | None = None
    wide_kind: str = ""  # "actual" or "trajectory" in the wide layout
    columns: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.problems

    def problem(self, field_name: str | None, message: str, value: str = "") -> Problem:
        """Record a problem with ``field_name`` (a key of ``columns``) of this row."""
        found = Problem(
            message=message,
            row=self.row_number,
            column=self.columns.get(field_name, field_name) if field_name else None,
            sheet=self.sheet,
            value=value,
            unit_code=self.unit_code,
            measure_code=self.measure_code,
            month=self.month_text,
        )
        self.problems.append(found)
        return found

    def numbers(self) -> dict[str, Number]:
        """The numeric fields that have a value, by field name."""
        names = ("actual", "trajectory", "ytd_variance", "forecast_variance", "budget")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass
class ParsedFile:
    """What :func:`parse_file` read: the rows and the problems found without the database."""

    filename: str
    kind: str
    layouts: dict[str, str]
    rows: list[ParsedRow]
    problems: list[Problem]  # file-level problems (header, unreadable sheet, too many rows)
    # validate()'s last result with what it depended on, so a second check of an unchanged
    # file against unchanged units and measures costs one query instead of every row again.
    checked: Any = field(default=None, repr=False, compare=False)

    @property
    def layout(self) -> str:
        return ", ".join(sorted(set(self.layouts.values())))

    @property
    def all_problems(self) -> list[Problem]:
        found = list(self.problems)
        for row in self.rows:
            found.extend(row.problems)
        return found

    @property
    def valid_rows(self) -> list[ParsedRow]:
        return [] if self.problems else [r for r in self.rows if r.is_valid]

    @property
    def rejected_rows(self) -> list[ParsedRow]:
        return [r for r in self.rows if not r.is_valid]


# --- cells -------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A cell as the person would read it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value).strip()


def normalise_header(value: Any) -> str:
    """Header text compared case-insensitively, with spaces, hyphens and case folded."""
    if isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"
    text = cell_text(value).lower().strip().lstrip("\ufeff")
    return re.sub(r"[\s]+", "_", text)


def parse_month(value: Any) -> date | None:
    """The first day of the month the cell names, or None when it names no month."""
    if isinstance(value, datetime):
        return date(value.year, value.month, 1)
    if isinstance(value, date):
        return date(value.year, value.month, 1)
    text = cell_text(value).lower()
    match = MONTH_RE.match(text)
    if match:
        year, month = int(match.group(1)), int(match.group(2))
    else:
        named = NAMED_MONTH_RE.match(text)
        if not named or named.group(1) not in MONTH_NAMES:
            return None
        year, month = int(named.group(2)), MONTH_NAMES[named.group(1)]
    if not 1 <= month <= 12 or not 1900 <= year <= 9999:
        return None
    return date(year, month, 1)


NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# The usual cell: digits with an optional minus sign and decimal point, nothing else.
PLAIN_NUMBER_RE = re.compile(r"(-?)(\d+(?:\.\d*)?)")


def parse_number(value: Any, number_format: str | None = None) -> Number | None:
    """Read a number: ``81.5``, ``81.5%``, ``£1,234``, ``1,234.56``, ``(1,234)`` (negative).

    Returns None for a blank cell; raises ``ValueError`` when the cell is not a number.
    A spreadsheet cell formatted as a percentage holds a fraction (0.815 shows as 81.5%).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int | float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite():
            raise ValueError("not a number")
        if number_format and "%" in number_format:
            number = number * 100
            return Number(number.normalize(), f"{format(number.normalize(), 'f')}%", True)
        return Number(number, cell_text(value))
    if isinstance(value, date | datetime):
        raise ValueError("a date, not a number")
    text = str(value).strip()
    if not text:
        return None
    plain = PLAIN_NUMBER_RE.fullmatch(text)
    if plain is not None:  # the general path below gives the same result, more slowly
        number = Decimal(plain.group(2))
        return Number(-number if plain.group(1) else number, text)
    body = text.replace("\u00a0", "").replace(" ", "")
    negative = False
    if body.startswith("(") and body.endswith(")"):
        negative, body = True, body[1:-1]
    if body.startswith("-"):
        negative, body = not negative, body[1:]
    elif body.startswith("+"):
        body = body[1:]
    pounds = body.startswith("£")
    if pounds:
        body = body[1:]
    if body.startswith("-") and not negative:  # £-1,234
        negative, body = True, body[1:]
    percent = body.endswith("%")
    if percent:
        body = body[:-1]
    if "," in body:
        if not re.match(r"^\d{1,3}(,\d{3})+(\.\d*)?$", body):
            raise ValueError("misplaced comma")
        body = body.replace(",", "")
    if not NUMBER_RE.match(body) or (percent and pounds):
        raise ValueError("not a number")
    try:
        number = Decimal(body)
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not number.is_finite():
        raise ValueError("not a number")
    return Number(-number if negative else number, text, percent, pounds)


# --- reading files -----------------------------------------------------------------------


@dataclass
class Sheet:
    name: str | None
    rows: Iterable[tuple[int, list[Any], list[str | None]]]  # (row number, values, formats)


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when ``head`` looks like UTF-16 text without a byte-order mark
    (every other byte zero, as Excel's "Unicode text" writes ASCII), else None."""
    head = head[: len(head) - len(head) % 2]
    if len(head) < 4:
        return None
    if not any(head[1::2]) and all(head[0::2]):
        return "utf-16-le"
    if not any(head[0::2]) and all(head[1::2]):
        return "utf-16-be"
    return None


def _decode_csv(content: bytes) -> str:
    """The text of a CSV file: UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text"),
    or Windows-1252/latin-1 (older Excel's "CSV"), in that order."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = _utf16_without_bom(content[:200])
    if encoding:
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            raise UnreadableFile(
                "This CSV file says it is UTF-16 text but its text could not be read. Save it "
                "as 'CSV UTF-8 (comma delimited)' and upload it again."
            ) from None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableFile(
        "This CSV file's text could not be read (it is neither UTF-8 nor Windows text). "
        "Save it as 'CSV UTF-8 (comma delimited)' and upload it again."
    )


def _read_csv(content: bytes) -> list[Sheet]:
    if content.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(content[:200]):
        pass  # UTF-16 text has zero bytes; it is decoded below
    elif b"\x00" in content[:4096]:
        raise UnreadableFile(
            "This file is not a CSV text file (it looks like a binary file). Save it as "
            "CSV (comma separated) or as an Excel workbook (.xlsx) and upload it again."
        )
    text = _decode_csv(content)
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample.splitlines()[0] if sample else ",", ",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, list[Any], list[str | None]]]:
        no_formats: dict[int, list[None]] = {}  # CSV cells have no number format
        try:
            for number, record in enumerate(reader, start=1):
                formats = no_formats.get(len(record))
                if formats is None:
                    formats = no_formats[len(record)] = [None] * len(record)
                yield number, record, formats
        except csv.Error as error:
            raise UnreadableFile(f"This CSV file could not be read: {error}") from None

    return [Sheet(None, rows())]


def _read_xlsx(content: bytes) -> list[Sheet]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    if not content.startswith(b"PK"):
        raise UnreadableFile(
            "This file is not an Excel workbook (.xlsx). Save it as .xlsx or as CSV and "
            "upload it again."
        )
    _check_unpacked_size(content)
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as error:
        raise UnreadableFile(
            "This Excel file could not be read (it may be damaged or password-protected): "
            f"{type(error).__name__}. Open it in Excel, save it as .xlsx and upload it again."
        ) from None
    named = [ws for ws in book.worksheets if any(k in ws.title.lower() for k in KINDS)]
    chosen = named or book.worksheets[:1]
    sheets = []
    for worksheet in chosen:

        def rows(ws=worksheet) -> Iterator[tuple[int, list[Any], list[str | None]]]:
            for number, cells in enumerate(ws.iter_rows(), start=1):
                values = [getattr(c, "value", None) for c in cells]
                formats = [getattr(c, "number_format", None) for c in cells]
                yield number, values, formats

        sheets.append(Sheet(worksheet.title if len(chosen) > 1 or named else None, rows()))
    return sheets


def _check_unpacked_size(content: bytes) -> None:
    """Refuse a workbook whose archive declares more than :data:`MAX_XLSX_UNPACKED_BYTES`
    or :data:`MAX_XLSX_MEMBERS` files, before anything is inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UnreadableFile(
            "This Excel file could not be read (it may be damaged or password-protected): "
            f"{type(error).__name__}. Open it in Excel, save it as .xlsx and upload it again."
        ) from None
    unpacked = sum(member.file_size for member in members)
    if len(members) > MAX_XLSX_MEMBERS or unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise UnreadableFile(
            f"This Excel file unpacks to {unpacked / 1024 / 1024:,.0f} MB in {len(members):,} "
            f"parts, more than a monthly return can need (at most "
            f"{MAX_XLSX_UNPACKED_BYTES // 1024 // 1024} MB), so it was not opened. Keep only "
            "the return's sheet (or save it as CSV) and upload it again."
        )


def _blank(values: list[Any]) -> bool:
    try:  # a CSV row: all text, blank when nothing but spaces
        return not "".join(values).strip()
    except TypeError:
        return all(cell_text(v) == "" for v in values)


def detect_layout(header: list[Any]) -> tuple[str, str] | None:
    """``(kind, layout)`` for a header row, or None when it is not one we know."""
    names = [normalise_header(h) for h in header]
    present = [n for n in names if n]
    if set(FINANCE_LONG) <= set(present):
        return FINANCE, "long"
    if set(PERFORMANCE_LONG) <= set(present):
        return PERFORMANCE, "long"
    if set(PERFORMANCE_WIDE) <= set(present) and any(parse_month(n) for n in present):
        return PERFORMANCE, "wide"
    return None


def parse_file(content: bytes, filename: str) -> ParsedFile:
    """Read ``content`` (a CSV or XLSX file called ``filename``).

    Raises :class:`UnreadableFile` when the file is not a CSV/XLSX file we can open; every
    other problem is listed in the result, by row and column.
    """
    suffix = PurePath(filename or "").suffix.lower()
    if suffix == ".csv":
        sheets = _read_csv(content)
    elif suffix in (".xlsx", ".xlsm"):
        sheets = _read_xlsx(content)
    elif suffix in (".xls", ".ods", ".numbers"):
        raise UnreadableFile(
            f"'{filename}' is a {suffix} file, which cannot be read. Save it as an Excel "
            "workbook (.xlsx) or as CSV (comma separated) and upload it again."
        )
    else:
        raise UnreadableFile(
            f"'{filename}' is not a CSV or Excel (.xlsx) file. Upload the performance pack "
            "or finance return as .csv or .xlsx (download a template from the upload page)."
        )
    if not content.strip():
        raise UnreadableFile(f"'{filename}' is empty. Choose the file with the month's data.")

    rows: list[ParsedRow] = []
    problems: list[Problem] = []
    layouts: dict[str, str] = {}
    kinds: set[str] = set()
    for sheet in sheets:
        _parse_sheet(sheet, rows, problems, layouts, kinds)
        if len(rows) > MAX_ROWS:
            problems.append(
                Problem(f"The file has more than {MAX_ROWS:,} rows. Split it into smaller files.")
            )
            rows = rows[:MAX_ROWS]
            break
    kind = "+".join(k for k in KINDS if k in kinds) or PERFORMANCE
    return ParsedFile(filename, kind, layouts, rows, problems)


def _parse_sheet(
    sheet: Sheet,
    rows: list[ParsedRow],
    problems: list[Problem],
    layouts: dict[str, str],
    kinds: set[str],
) -> None:
    iterator = iter(sheet.rows)
    header: list[Any] | None = None
    header_number = 0
    for number, values, _formats in iterator:
        if not _blank(values):
            header, header_number = values, number
            break
    if header is None:
        if sheet.name is None:
            problems.append(Problem("The file has no header row and no data. " + EXPECTED_HEADERS))
        return
    detected = detect_layout(header)
    if detected is None:
        seen = ", ".join(f"'{cell_text(h)}'" for h in header if cell_text(h)) or "nothing"
        problems.append(
            Problem(
                f"The header row was not recognised (it has {seen}). {EXPECTED_HEADERS}",
                row=header_number,
                sheet=sheet.name,
            )
        )
        return
    kind, layout = detected
    kinds.add(kind)
    layouts[sheet.name or ""] = f"{kind} {layout}"
    names = [normalise_header(h) for h in header]
    labels = [cell_text(h) for h in header]
    index = {}
    for position, name in enumerate(names):
        if name and name not in index:
            index[name] = position
    for position, name in enumerate(names):
        if name and names.count(name) > 1 and index[name] != position:
            problems.append(
                Problem(
                    f"The column '{labels[position]}' appears more than once. Keep one and "
                    "delete the others.",
                    row=header_number,
                    column=labels[position],
                    sheet=sheet.name,
                )
            )
            return
    month_columns: list[tuple[int, date, str]] = []
    if layout == "wide":
        for position, value in enumerate(header):
            name = names[position]
            if not name or name in PERFORMANCE_WIDE:
                continue
            month = parse_month(value)
            if month is None:
                problems.append(
                    Problem(
                        f"'{labels[position]}' is not a month. Month columns are headed "
                        "YYYY-MM, e.g. 2026-04.",
                        row=header_number,
                        column=labels[position],
                        sheet=sheet.name,
                    )
                )
                return
            month_columns.append((position, month, labels[position]))

    def get(values: list[Any], name: str) -> Any:
        position = index.get(name)
        return values[position] if position is not None and position < len(values) else None

    def fmt(formats: list[str | None], name: str) -> str | None:
        position = index.get(name)
        return formats[position] if position is not None and position < len(formats) else None

    # Every row's field -> column header map is the same (rows only read it); one per sheet.
    columns = {name: labels[pos] for name, pos in index.items()}
    number_fields = [
        (name, index.get(name))
        for name in (
            ("actual", "trajectory")
            if kind == PERFORMANCE
            else ("ytd_variance", "forecast_variance", "budget")
        )
    ]
    months: dict[str, tuple[str, date | None]] = {}  # month cell text -> (text, month)
    for number, values, formats in iterator:
        if _blank(values):
            continue
        if len(rows) > MAX_ROWS:
            return
        unit_code = cell_text(get(values, "unit_code"))
        if layout == "wide":
            _wide_rows(sheet, number, values, formats, unit_code, columns, get, month_columns, rows)
            continue
        month_raw = get(values, "month")
        if isinstance(month_raw, str):
            month = months.get(month_raw)
            if month is None:
                month = months[month_raw] = (cell_text(month_raw), parse_month(month_raw))
        else:
            month = (cell_text(month_raw), parse_month(month_raw))
        row = ParsedRow(
            row_number=number,
            sheet=sheet.name,
            kind=kind,
            layout=layout,
            unit_code=unit_code,
            measure_code=cell_text(get(values, "measure_code")) if kind == PERFORMANCE else "",
            month_text=month[0],
            month=month[1],
            columns=columns,
        )
        _check_identity(row, month_raw)
        for name, position in number_fields:
            raw = values[position] if position is not None and position < len(values) else None
            if raw is None or (raw.__class__ is str and not raw.strip()):
                continue  # blank: no value (what parse_number says, without the call)
            try:
                setattr(row, name, parse_number(raw, fmt(formats, name)))
            except ValueError:
                row.problem(name, not_a_number(raw, money=kind == FINANCE), cell_text(raw))
        if kind == FINANCE:
            for name, what in (
                ("ytd_variance", "year-to-date variance"),
                ("forecast_variance", "forecast outturn variance"),
            ):
                if getattr(row, name) is None and not any(
                    p.column == columns.get(name) for p in row.problems
                ):
                    row.problem(
                        name,
                        f"The {what} is blank. Enter it in pounds (positive = overspend), "
                        "e.g. 250000 or -12,500",
                    )
        elif row.actual is None and row.trajectory is None and not row.problems:
            continue  # a row of the template left blank: nothing to load
        rows.append(row)


def _check_identity(row: ParsedRow, month_raw: Any) -> None:
    if not row.unit_code:
        row.problem("unit_code", "The unit code is blank. Enter the unit's code, e.g. SURG")
    if row.kind == PERFORMANCE and not row.measure_code:
        row.problem(
            "measure_code", "The measure code is blank. Enter the measure's code, e.g. RTT18"
        )
    if month_raw is not None and row.month is None and row.month_text:
        row.problem(
            "month",
            f"'{row.month_text}' is not a month. Enter it as YYYY-MM, e.g. 2026-04",
            row.month_text,
        )
    elif row.month is None:
        row.problem("month", "The month is blank. Enter it as YYYY-MM, e.g. 2026-04")


def _wide_rows(sheet, number, values, formats, unit_code, columns, get, month_columns, rows):
    wide_kind_text = cell_text(get(values, "kind"))
    wide_kind = wide_kind_text.lower()
    base = {
        "row_number": number,
        "sheet": sheet.name,
        "kind": PERFORMANCE,
        "layout": "wide",
        "unit_code": unit_code,
        "measure_code": cell_text(get(values, "measure_code")),
    }
    if wide_kind not in WIDE_KINDS:
        row = ParsedRow(month_text="", month=None, columns=dict(columns), **base)
        row.problem(
            "kind",
            f"'{wide_kind_text}' is not a kind of value. Enter actual or trajectory",
            wide_kind_text,
        )
        _check_identity_codes(row)
        rows.append(row)
        return
    produced = False
    for position, month, label in month_columns:
        raw = values[position] if position < len(values) else None
        if cell_text(raw) == "":
            continue
        row = ParsedRow(
            month_text=f"{month:%Y-%m}",
            month=month,
            wide_kind=wide_kind,
            columns={**columns, wide_kind: label, "month": label},
            **base,
        )
        _check_identity_codes(row)
        try:
            setattr(row, wide_kind, parse_number(raw, formats[position]))
        except ValueError:
            row.problem(wide_kind, not_a_number(raw, money=False), cell_text(raw))
        rows.append(row)
        produced = True
    if not produced and not (unit_code and base["measure_code"]):
        row = ParsedRow(month_text="", month=None, columns=dict(columns), **base)
        _check_identity_codes(row)
        if row.problems:
            rows.append(row)


def _check_identity_codes(row: ParsedRow) -> None:
    if not row.unit_code:
        row.problem("unit_code", "The unit code is blank. Enter the unit's code, e.g. SURG")
    if not row.measure_code:
        row.problem(
            "measure_code", "The measure code is blank. Enter the measure's code, e.g. RTT18"
        )


def not_a_number(raw: Any, *, money: bool) -> str:
    """The message for a cell that is not a number."""
    if money:
        return (
            f"'{cell_text(raw)}' is not an amount of money. Enter pounds in digits, e.g. "
            "250000, £1,234 or (1,234) for an underspend"
        )
    return f"'{cell_text(raw)}' is not a number. Enter digits, e.g. 81.5"
