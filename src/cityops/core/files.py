"""Content-addressed file storage on disk: attachments and photos of every package.

A file is stored once under its SHA-256 (files/ab/cd/abcd...), so the same photo sent twice takes no
more room and a stored file can never change under its record. The record that refers to a file
keeps its hash, size, media type and original name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cityops.core.errors import CityopsError, NotFound, ValidationFailed

MAX_BYTES = 20 * 1024 * 1024
# What staff and citizens attach: photos, scans, office documents, short videos and voice notes.
MEDIA_TYPES = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/webp": b"RIFF",
    "application/pdf": b"%PDF",
    "video/mp4": None,
    "audio/mpeg": None,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": b"PK\x03\x04",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": b"PK\x03\x04",
}


class PayloadTooLarge(CityopsError):
    status = 413
    code = "payload_too_large"


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    media_type: str


def _path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256[2:4] / sha256


def store(root: Path, data: bytes, *, media_type: str, field: str = "file",
          max_bytes: int = MAX_BYTES) -> StoredFile:
    """Check size and type (the declared type must match the file's first bytes) and store the
    file under its hash. Writing goes through a temporary file and a rename, so a crash never leaves
    half a file under a valid name."""
    media_type = media_type.split(";", 1)[0].strip().lower()
    if not data:
        raise ValidationFailed("the file is empty", field=field)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the file has {len(data):,} bytes; at most {max_bytes:,} are accepted",
                              field=field)
    if media_type not in MEDIA_TYPES:
        raise ValidationFailed(f"files of type {media_type or '(none)'} are not accepted; accepted: "
                               f"{', '.join(sorted(MEDIA_TYPES))}", field=field, status=415)
    magic = MEDIA_TYPES[media_type]
    if magic is not None and not data.startswith(magic):
        raise ValidationFailed(f"the file's content is not {media_type}", field=field, status=415)
    sha256 = hashlib.sha256(data).hexdigest()
    target = _path(root, sha256)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return StoredFile(sha256=sha256, size=len(data), media_type=media_type)


def open_path(root: Path, sha256: str) -> Path:
    """The stored file's path (for a FileResponse); NotFound if the hash is unknown or malformed."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound("no such file")
    path = _path(root, sha256)
    if not path.is_file():
        raise NotFound("no such file")
    return path
