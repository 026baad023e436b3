"""Photo uploads of butlers (repair evidence) and residents (fault reports), stored server-side.

Files go under ``{run_dir}/uploads/{community}/{uuid}.{ext}`` and are referenced as
``/photos/{community}/{name}``; serving them checks the viewer's tenant like any resource.
Only JPEG, PNG and WebP are accepted (checked by their magic bytes, not the client's claim),
at most ``MAX_BYTES``; the original file name is discarded.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

MAX_BYTES = 5 * 1024 * 1024
NAME_RE = re.compile(r"^[0-9a-f]{32}\.(jpg|png|webp)$")


class PhotoRejected(ValueError):
    """The upload is not an accepted image or is too large."""


def sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) > 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def store(root: Path, community: str, data: bytes) -> str:
    """Save ``data`` and return its reference ``/photos/{community}/{name}``."""
    if len(data) > MAX_BYTES:
        raise PhotoRejected(f"photo larger than {MAX_BYTES // (1024 * 1024)} MB")
    ext = sniff(data)
    if ext is None:
        raise PhotoRejected("only JPEG, PNG or WebP photos are accepted")
    folder = root / "uploads" / community
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.{ext}"
    (folder / name).write_bytes(data)
    return f"/photos/{community}/{name}"


def locate(root: Path, community: str, name: str) -> Path | None:
    if not NAME_RE.match(name) or "/" in community or community.startswith("."):
        return None
    path = root / "uploads" / community / name
    return path if path.is_file() else None
