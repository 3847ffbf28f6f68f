"""A small SVG writer for the report's charts: elements as text, every text and attribute value
escaped on the way in, so a host, target or image name from the evidence cannot end an attribute,
open a tag or carry a character XML refuses. Pure: no I/O. docs/report.md says why this and not a
plotting library."""

from __future__ import annotations

import re
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

# characters XML 1.0 forbids even as references (C0 controls but tab/newline/return, lone surrogates, U+FFFE/U+FFFF)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"


def clean(value: object) -> str:
    """`value` as text XML can hold: forbidden characters become U+FFFD."""
    return _NOT_XML.sub("\ufffd", str(value))


def text_of(value: object) -> str:
    """Escaped character data (for element content, in SVG and in HTML alike)."""
    return escape(clean(value))


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def attrs(values: dict[str, object]) -> str:
    """` name="value"` pairs; `class_` -> class, `data_x` -> data-x, `font_size` -> font-size; None is left out."""
    out = []
    for key, value in values.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        shown = _number(value) if isinstance(value, int | float) and not isinstance(value, bool) else clean(value)
        out.append(f" {name}={quoteattr(shown)}")
    return "".join(out)


def el(tag: str, children: Iterable[str] | str = (), /, **values: object) -> str:
    """An element; `children` are already-built elements (use `text_of` for character data)."""
    inner = children if isinstance(children, str) else "".join(children)
    return f"<{tag}{attrs(values)}>{inner}</{tag}>" if inner else f"<{tag}{attrs(values)}/>"


def text(x: float, y: float, content: object, /, **values: object) -> str:
    return el("text", text_of(content), x=x, y=y, **values)


def rect(x: float, y: float, width: float, height: float, fill: str, tip: object | None = None, /, **values: object) -> str:
    """A rectangle; `tip`: the tooltip a browser shows on hover (an SVG <title>)."""
    return el("rect", el("title", text_of(tip)) if tip is not None else (), x=x, y=y, width=max(width, 0.0), height=max(height, 0.0),
              fill=fill, **values)


def line(x1: float, y1: float, x2: float, y2: float, stroke: str, /, **values: object) -> str:
    return el("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, **values)


def document(width: float, height: float, title: object, body: Iterable[str], /, **values: object) -> str:
    """A standalone SVG document (also inlined as is in report.html); its <title> names the chart."""
    return el("svg", [el("title", text_of(title)), *body], xmlns="http://www.w3.org/2000/svg", width=width, height=height,
              viewBox=f"0 0 {_number(width)} {_number(height)}", font_family=FONT, font_size=12, role="img", **values)


def shorten(value: object, limit: int) -> str:
    """`value` cut to `limit` characters with an ellipsis (the full text goes in a tooltip)."""
    shown = clean(value)
    return shown if len(shown) <= limit else shown[: max(limit - 1, 1)] + "\u2026"
