"""Charts drawn on the server as small inline SVG: no JavaScript, no library, no request
beyond the page itself.  Each chart is a plain string of markup; every number it shows is
also written as text, so that a screen reader (and a test) reads what the bars draw."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

# The familiar colours of the status (ecpa.cases.service.colour), as fills.
FILL = {"red": "#e53935", "yellow": "#fdd835", "green": "#43a047", "grey": "#bbbbbb"}
INK = {"red": "#fff", "yellow": "#222", "green": "#fff", "grey": "#222"}


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Bar:
    key: str      # a stable name (data-key), e.g. the indicator
    label: str    # what the reader sees, already translated
    value: float  # the length of the bar
    text: str     # the value as shown, e.g. "31.2%"


def bar_chart(bars: list[Bar], *, title: str, width: int = 340, row: int = 22,
              label_width: int = 120, colour: str = "#b71c1c") -> str:
    """Horizontal bars, longest first as given, scaled to the largest value."""
    top = max((b.value for b in bars), default=0) or 1
    span = width - label_width - 52
    height = row * len(bars) + 4
    out = [(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width * 2}px" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>')]
    for i, b in enumerate(bars):
        y = 2 + i * row
        w = max(0.0, b.value) / top * span
        out.append(
            f'<g class="bar" data-key="{escape(b.key)}" data-value="{b.value:.6f}">'
            f'<text x="{label_width - 4}" y="{y + row * 0.68:.1f}" text-anchor="end" '
            f'font-size="12">{escape(b.label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{_num(w)}" height="{row - 6}" '
            f'fill="{colour}" rx="2"/>'
            f'<text x="{label_width + w + 4:.1f}" y="{y + row * 0.68:.1f}" font-size="12">'
            f'{escape(b.text)}</text></g>')
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Tile:
    code: str
    name: str
    colour: str   # red, yellow, green or grey
    href: str
    lines: tuple[str, ...]  # short lines under the name, e.g. counts and H
    tooltip: str


def tile_grid(groups: list[tuple[str, list[Tile]]], *, title: str, columns: int = 5,
              tile: int = 66, gap: int = 2) -> str:
    """Villages as square tiles, township by township (a heading, then its villages in
    rows of ``columns``): a map of the county without map tiles.  Each tile is a link."""
    width = columns * (tile + gap)
    parts, y = [], 0
    for heading, tiles in groups:
        y += 18
        parts.append(f'<text class="township" x="0" y="{y - 4}" font-size="13" '
                     f'font-weight="700">{escape(heading)}</text>')
        for i, t in enumerate(tiles):
            col, r = i % columns, i // columns
            x, ty = col * (tile + gap), y + r * (tile + gap)
            fill, ink = FILL.get(t.colour, FILL["grey"]), INK.get(t.colour, "#222")
            name = t.name if len(t.name) <= 5 else t.name[:4] + "…"
            text = [(f'<text x="{x + tile / 2}" y="{ty + 17}" text-anchor="middle" font-size="12" '
                     f'font-weight="700" fill="{ink}">{escape(name)}</text>')]
            for j, line in enumerate(t.lines[:3]):
                text.append(f'<text x="{x + tile / 2}" y="{ty + 33 + j * 13}" text-anchor="middle" '
                            f'font-size="10" fill="{ink}">{escape(line)}</text>')
            parts.append(
                f'<a class="tile" href="{escape(t.href)}" data-code="{escape(t.code)}" '
                f'data-colour="{escape(t.colour)}"><title>{escape(t.tooltip)}</title>'
                f'<rect x="{x}" y="{ty}" width="{tile}" height="{tile}" rx="4" fill="{fill}"/>'
                + "".join(text) + "</a>")
        rows = (len(tiles) + columns - 1) // columns
        y += rows * (tile + gap) + 4
    return (f'<svg class="tiles" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {width} {max(y, 1)}" width="100%" style="max-width:{width * 2}px" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(parts) + "</svg>")
