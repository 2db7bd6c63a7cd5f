"""Flat, shields.io-style SVG badges with measured text widths.

Widths come from the real font metric: Pillow's ``ImageFont`` with DejaVu Sans at 11 px (the
font the SVG names first, shipped by Debian's fonts-dejavu-core). Each text also carries
``textLength`` equal to its measured width, so a renderer with another font squeezes the text
into the box instead of overflowing it. Without the font file a conservative per-character
width is used (wider than any DejaVu Sans glyph at 11 px).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

FONT_PATHS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),)
FONT_SIZE = 11
FALLBACK_CHAR_WIDTH = 11.0  # >= the widest DejaVu Sans glyph at 11 px
PAD = 6  # px on each side of a text
HEIGHT = 20

COLORS = {"blue": "#007ec6", "green": "#4c1", "grey": "#555", "orange": "#fe7d37",
          "lightgrey": "#9f9f9f", "brightgreen": "#4c1", "yellowgreen": "#a4a61d"}


@functools.cache
def _font() -> Any:
    try:
        from PIL import ImageFont
    except ImportError:
        return None
    for path in FONT_PATHS:
        if path.exists():
            return ImageFont.truetype(str(path), FONT_SIZE)
    return None


def text_width(text: str) -> float:
    font = _font()
    if font is None:
        return FALLBACK_CHAR_WIDTH * len(text)
    return float(font.getlength(text))


def render(label: str, message: str, color: str = "blue") -> str:
    """The SVG text of one badge; label and message are escaped here."""
    lw_text, mw_text = text_width(label), text_width(message)
    lw = int(lw_text + 2 * PAD + 0.999)
    mw = int(mw_text + 2 * PAD + 0.999)
    total = lw + mw
    fill = COLORS.get(color, color)
    title = escape(f"{label}: {message}")
    label_x, message_x = lw / 2, lw + mw / 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(f"{label}: {message}", {chr(34): "&quot;"})}">'
        f"<title>{title}</title>"
        f'<g shape-rendering="crispEdges">'
        f'<rect width="{lw}" height="{HEIGHT}" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="{HEIGHT}" fill="{fill}"/></g>'
        f'<g fill="#fff" text-anchor="middle" '
        f'font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="{FONT_SIZE}">'
        f'<text x="{label_x:.1f}" y="14" textLength="{lw_text:.1f}" '
        f'lengthAdjust="spacingAndGlyphs">{escape(label)}</text>'
        f'<text x="{message_x:.1f}" y="14" textLength="{mw_text:.1f}" '
        f'lengthAdjust="spacingAndGlyphs">{escape(message)}</text></g></svg>'
    )


def box_edges(label: str, message: str) -> tuple[int, int]:
    """(label box width, total width) as :func:`render` lays them out (tests use it)."""
    lw = int(text_width(label) + 2 * PAD + 0.999)
    return lw, lw + int(text_width(message) + 2 * PAD + 0.999)
