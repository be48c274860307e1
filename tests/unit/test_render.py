"""Report text is untrusted: highlighting escapes it and labels."""

from core.types import Span
from ui.render import highlight_html, label_colors, legend_html


def test_highlight_escapes_report_text_and_labels():
    text = 'QRS <script>alert("x")</script> & <b>bold</b>'
    html = highlight_html(text, [Span(4, 12, "<img src=x onerror=alert(1)>")])
    assert "<script>" not in html and "<b>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&amp;" in html and "&lt;img src=x" in html
    assert html.count("<mark") == 1


def test_highlight_skips_overlaps_and_keeps_all_text():
    text = "sinus rhythm at 78 bpm"
    html = highlight_html(text, [Span(0, 12, "R"), Span(6, 12, "X"), Span(16, 22, "HR")])
    assert html.count("<mark") == 2
    assert "sinus rhythm" in html and " at " in html and "78 bpm" in html


def test_legend_and_colours_are_stable():
    colors = label_colors(["B", "A", "B"])
    assert list(colors) == ["A", "B"] and colors == label_colors(["A", "B"])
    assert "&lt;x&gt;" in legend_html({"<x>": "#fff"})
