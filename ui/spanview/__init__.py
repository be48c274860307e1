"""The span view: a Streamlit Custom Component v2 (``st.components.v2.component``, no iframe, no npm bundle) that
shows a report with its entities marked and sends one event per review decision back to Python.

The browser side is :file:`index.js` and :file:`style.css` beside this module (read here and registered inline:
Streamlit serves asset *paths* only for installed packages). What the view shows and what it sends:

- ``data`` (from Python): ``doc``, ``text``, ``labels`` (``[{"name", "color"}]``, keys 1..9 in this order),
  ``items`` (``[{"start", "end", "label", "score", "source", "status", "low"}]`` in text order; status ``pending``,
  ``accepted``, ``corrected`` or ``rejected``), ``current`` (the index of the entity to highlight, -1 for none),
  ``seq`` (the last event Python answered), ``locked`` (no reviewer yet), ``message`` / ``error`` (the last
  decision's outcome), ``autofocus``.
- the ``event`` trigger (to Python): ``{"action", "item", "start", "end", "label", "seq", "doc"}``; ``action`` is
  ``accept``, ``reject``, ``relabel``, ``adjust``, ``correct`` (new boundaries and a new label) or ``add``; ``item``
  is the ``[start, end, label]`` of the entity decided on as the view showed it (``None`` for ``add``).

Report text and label names are untrusted; the script builds its DOM with ``textContent`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import streamlit as st

HERE = Path(__file__).resolve().parent
NAME = "reportlens_spanview"
HTML = ('<div class="rl-sv" tabindex="0" role="application" aria-label="Report text: review with the keyboard" '
        'aria-describedby="rl-sv-status"><div class="rl-sv-bar"></div><div class="rl-sv-text"></div>'
        '<div class="rl-sv-status" id="rl-sv-status" aria-live="polite"></div></div>')
ACTIONS = ("accept", "reject", "relabel", "adjust", "correct", "add")
KEYS_HELP = ("Click the report text (or Tab to it), then: **A** / Enter accept · **X** / Backspace reject · "
             "**J** / **K** (or the arrows) next / previous entity · **1**–**9** relabel as that label · "
             "Shift+←/→ move the start left / the end right by a word, Shift+Alt+←/→ shrink from the end / start "
             "(Enter saves, Esc resets) · select words with the mouse to add them with the highlighted label · "
             "Shift+A accept report · Shift+X no entity here · N next report.")


@cache
def _renderer() -> Callable[..., Any]:
    """The component's mount command, registered once per process (the files are read then)."""
    return st.components.v2.component(
        NAME, html=HTML, css=(HERE / "style.css").read_text(encoding="utf-8"),
        js=(HERE / "index.js").read_text(encoding="utf-8"), isolate_styles=False)


def span_view(data: dict[str, Any], *, key: str, on_event: Callable[[], None]) -> Any:
    """Mount the span view with ``data``; ``on_event`` runs (before the rerun it causes) when the view sends an
    event, readable in it as ``st.session_state[key]["event"]``. Returns the component's result (``.event``)."""
    return _renderer()(key=key, data=data, on_event_change=on_event)
