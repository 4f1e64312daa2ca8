"""Content-addressed file storage: one copy per content, checked size and type."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityops.core import files
from cityops.core.errors import NotFound, ValidationFailed

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_the_same_content_is_stored_once_under_its_hash(tmp_path: Path) -> None:
    first = files.store(tmp_path, PNG, media_type="image/png")
    second = files.store(tmp_path, PNG, media_type="image/png; charset=binary")
    assert first == second and first.size == len(PNG)
    stored = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].name == first.sha256
    assert files.open_path(tmp_path, first.sha256).read_bytes() == PNG


def test_oversize_wrong_type_and_disguised_files_are_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(files.PayloadTooLarge) as too_big:
        files.store(tmp_path, PNG, media_type="image/png", field="photo", max_bytes=10)
    assert too_big.value.status == 413 and too_big.value.field == "photo"
    with pytest.raises(ValidationFailed) as wrong_type:
        files.store(tmp_path, b"MZ\x90\x00", media_type="application/x-msdownload", field="photo")
    assert wrong_type.value.status == 415 and "not accepted" in wrong_type.value.message
    with pytest.raises(ValidationFailed) as disguised:
        files.store(tmp_path, b"<html>", media_type="image/jpeg")
    assert disguised.value.status == 415 and "not image/jpeg" in disguised.value.message
    with pytest.raises(ValidationFailed, match="empty"):
        files.store(tmp_path, b"", media_type="image/png")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_unknown_or_malformed_hashes_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        files.open_path(tmp_path, "0" * 64)
    with pytest.raises(NotFound):
        files.open_path(tmp_path, "../../etc/passwd")
