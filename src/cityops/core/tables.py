"""Tables people bring (CSV or Excel): read as rows of header -> value, with line numbers, so an
import can say which line of the file it refused and why."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from openpyxl import load_workbook

from cityops.core.errors import ValidationFailed

MAX_ROWS = 100_000


def read_table(data: bytes, filename: str, *, aliases: Mapping[str, str] | None = None) -> list[
        tuple[int, dict[str, Any]]]:
    """(line, {column: value}) for every non-empty row under the header row of a .csv (UTF-8, with or
    without BOM) or .xlsx file; `aliases` maps other header names (e.g. Chinese ones) to columns."""
    name = filename.lower()
    if name.endswith(".csv"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed(f"{filename}: CSV must be UTF-8 text", field="file") from None
        grid: list[list[Any]] = list(csv.reader(io.StringIO(text)))
    elif name.endswith(".xlsx"):
        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise ValidationFailed(f"{filename}: not a readable Excel workbook ({exc})",
                                   field="file") from None
        grid = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
        book.close()
    else:
        raise ValidationFailed(f"{filename}: give a .csv or .xlsx file", field="file")
    if not grid:
        raise ValidationFailed(f"{filename}: the file is empty", field="file")
    if len(grid) > MAX_ROWS + 1:
        raise ValidationFailed(f"{filename}: at most {MAX_ROWS} rows", field="file")
    names = {**{k: k for k in (aliases or {}).values()}, **(aliases or {})}
    header = [names.get(str(h).strip(), str(h).strip()) if h is not None else "" for h in grid[0]]
    rows = []
    for line, values in enumerate(grid[1:], start=2):
        if all(v is None or str(v).strip() == "" for v in values):
            continue
        rows.append((line, {h: v for h, v in zip(header, values, strict=False) if h}))
    return rows
