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


def workbook_bytes(sheet_title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                   timezone: str = "Asia/Shanghai") -> bytes:
    tz = ZoneInfo(timezone)
    # Rows often come from a generator that checks its filters on the first step: let a refusal
    # happen before the workbook exists (a write-only sheet abandoned half-way cannot be cleaned up).
    pending = iter(rows)
    first = next(pending, None)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_title[:31])
    bold = Font(bold=True)
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(ws, value=header)
        cell.font = bold
        header_cells.append(cell)
    ws.append(header_cells)
    for row in itertools.chain([] if first is None else [first], pending):
        ws.append([_cell_value(v, tz) for v in row])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def xlsx_response(filename: str, sheet_title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]],
                  *, timezone: str = "Asia/Shanghai") -> Response:
    """An .xlsx download; `filename` may be Chinese (RFC 5987 encoding)."""
    body = workbook_bytes(sheet_title, headers, rows, timezone=timezone)
    disposition = f"attachment; filename=\"export.xlsx\"; filename*=UTF-8''{quote(filename)}"
    return Response(body, media_type=XLSX_MEDIA_TYPE, headers={"Content-Disposition": disposition})
