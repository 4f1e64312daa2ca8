"""Excel export of any list: one write-only workbook, streamed, so large lists stay small in memory."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell_value(value: Any, tz: ZoneInfo) -> Any:
    # Excel has no time zones: show local wall time, as the pages do.
    if isinstance(value, datetime):
        return value.astimezone(tz).replace(tzinfo=None)
    return value


Sheet = tuple[str, Sequence[str], Iterable[Sequence[Any]]]  # title, headers, rows


def workbook_bytes(sheet_title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                   timezone: str = "Asia/Shanghai") -> bytes:
    # Rows often come from a generator that checks its filters on the first step: let a refusal
    # happen before the workbook exists (a write-only sheet abandoned half-way cannot be cleaned up).
    pending = iter(rows)
    first = next(pending, None)
    return sheets_bytes([(sheet_title, headers, itertools.chain([] if first is None else [first], pending))],
                        timezone=timezone)


def sheets_bytes(sheets: Iterable[Sheet], *, timezone: str = "Asia/Shanghai") -> bytes:
    """A write-only workbook with several sheets, in order (bold headers, local wall times)."""
    tz = ZoneInfo(timezone)
    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for sheet_title, headers, rows in sheets:
        ws = wb.create_sheet(title=sheet_title[:31])
        header_cells = []
        for header in headers:
            cell = WriteOnlyCell(ws, value=header)
            cell.font = bold
            header_cells.append(cell)
        ws.append(header_cells)
        for row in rows:
            ws.append([_cell_value(v, tz) for v in row])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def xlsx_response(filename: str, sheet_title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]],
                  *, timezone: str = "Asia/Shanghai") -> Response:
    """An .xlsx download; `filename` may be Chinese (RFC 5987 encoding)."""
    return xlsx_download(filename, workbook_bytes(sheet_title, headers, rows, timezone=timezone))


def xlsx_download(filename: str, body: bytes, *, fallback: str = "export.xlsx") -> Response:
    """A workbook already written, as an .xlsx download named `filename` (RFC 5987; `fallback`: the
    ASCII name for clients without it)."""
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
    return Response(body, media_type=XLSX_MEDIA_TYPE, headers={"Content-Disposition": disposition})
