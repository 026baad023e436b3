"""Printable QR codes of checkpoints (segno: pure Python, SVG out, no imaging library).

The symbol holds only the checkpoint's code (``XJ-…``), not a URL: the phone page reads it and
posts it with the signed-in butler's session, so a code photographed and shared outside the
app opens nothing, and the same sticker keeps working if the site's host name changes. The code
is also printed under the symbol for typing when the camera cannot read it.
"""

from __future__ import annotations

import io

import segno


def svg(code: str, caption: str) -> str:
    qr = segno.make(code, error="m")
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=8, border=4, title=f"{caption} {code}")
    return buf.getvalue().decode("utf-8")


def matrix(code: str) -> list[list[int]]:
    """The module matrix (for tests and for checking a printed label)."""
    return [list(row) for row in segno.make(code, error="m").matrix]


def data_uri(code: str, caption: str) -> str:
    """The SVG as a ``data:`` URI, for the printable sheet of a route (an ``<img>`` per checkpoint:
    the page's CSP allows ``data:`` images, and no inline markup from the QR library reaches the page)."""
    return segno.make(code, error="m").svg_data_uri(scale=6, border=4, title=f"{caption} {code}")
