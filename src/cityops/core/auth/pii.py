"""Masking of personal information (PIPL): what a viewer without `pii.view` sees instead."""

from __future__ import annotations

MASK = "*"


def mask_phone(phone: str | None) -> str | None:
    """13812345678 -> 138****5678; landlines keep their first 3 and last 4 characters the same way."""
    if not phone:
        return phone
    if len(phone) <= 7:
        return MASK * len(phone)
    return phone[:3] + MASK * 4 + phone[-4:]


def mask_id_number(id_number: str | None) -> str | None:
    """410611199001011234 -> 410611********1234: the region stays, birth date and sequence go."""
    if not id_number:
        return id_number
    if len(id_number) <= 10:
        return MASK * len(id_number)
    return id_number[:6] + MASK * (len(id_number) - 10) + id_number[-4:]
