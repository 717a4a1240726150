"""Reading register files: CSV (UTF-8 or GB18030, as Excel in China saves it) and XLSX."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidInput

Row = tuple[int, list]


def _csv_encoding(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    try:
        head.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut by the 64 KiB boundary
            return "utf-8-sig"
        return "gb18030"


def read_rows(path: Path) -> tuple[list[str], Iterator[Row]]:
    """The header and an iterator of ``(row_number, values)``; row 1 is the header, so
    row numbers match what a spreadsheet shows."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise InvalidInput(f"file not found: {path}")
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    raise InvalidInput(f"unsupported file type {suffix!r}: use .csv or .xlsx", file=str(path))


def _read_csv(path: Path) -> tuple[list[str], Iterator[Row]]:
    encoding = _csv_encoding(path)
    fh = path.open(encoding=encoding, newline="")
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except StopIteration:
        fh.close()
        raise InvalidInput(f"{path.name} is empty") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        fh.close()
        raise InvalidInput(f"{path.name}: cannot read the header: {exc}") from None

    def rows() -> Iterator[Row]:
        with fh:
            try:
                for rowno, values in enumerate(reader, start=2):
                    if any(v.strip() for v in values):
                        yield rowno, values
            except (UnicodeDecodeError, csv.Error) as exc:
                raise InvalidInput(f"{path.name}, near row {reader.line_num}: {exc}") from None

    return header, rows()


def _read_xlsx(path: Path) -> tuple[list[str], Iterator[Row]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise InvalidInput(f"{path.name} is not a readable XLSX workbook: {exc}") from None
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    try:
        header = ["" if v is None else str(v) for v in next(it)]
    except StopIteration:
        wb.close()
        raise InvalidInput(f"{path.name} is empty") from None

    def rows() -> Iterator[Row]:
        try:
            for rowno, values in enumerate(it, start=2):
                if any(v is not None and str(v).strip() for v in values):
                    yield rowno, list(values)
        finally:
            wb.close()

    return header, rows()
