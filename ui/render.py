"""Rendering helpers. Report text is untrusted: every piece of it goes through ``html.escape``."""

from __future__ import annotations

import html
from collections.abc import Sequence

from core.types import Span

PALETTE = [
    "#fde68a", "#bfdbfe", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc", "#e9d5ff", "#fecaca", "#d9f99d",
]


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(sorted(set(labels)))}


def highlight_html(text: str, spans: Sequence[Span], colors: dict[str, str] | None = None) -> str:
    """The text as escaped HTML with non-overlapping ``spans`` wrapped in coloured ``<mark>`` tags.

    Overlapping spans must be resolved by the caller (``core.alignment.resolve_overlaps``); a span overlapping an
    earlier one is skipped here rather than producing broken markup.
    """
    colors = colors or label_colors([s.label for s in spans])
    out: list[str] = []
    pos = 0
    for span in sorted(spans):
        if span.start < pos:
            continue
        out.append(html.escape(text[pos : span.start]))
        color = colors.get(span.label, PALETTE[0])
        out.append(
            f'<mark style="background:{color};padding:0 2px;border-radius:3px" title="{html.escape(span.label)}">'
            f"{html.escape(text[span.start : span.end])}"
            f'<sup style="font-size:0.65em;font-weight:600;margin-left:2px">{html.escape(span.label)}</sup></mark>'
        )
        pos = span.end
    out.append(html.escape(text[pos:]))
    body = "".join(out)
    return (
        '<div style="white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:0.92em;line-height:1.7;'
        f'border:1px solid #e5e7eb;border-radius:6px;padding:0.75em">{body}</div>'
    )


def legend_html(colors: dict[str, str]) -> str:
    items = "".join(
        f'<span style="background:{c};padding:1px 6px;border-radius:3px;margin-right:6px">{html.escape(lab)}</span>'
        for lab, c in colors.items()
    )
    return f'<div style="margin:0.3em 0">{items}</div>'
