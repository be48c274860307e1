"""bertviz head view and model view as standalone HTML for ``st.iframe``, with no request outside the machine.

bertviz 1.4.1's view scripts (``ui/bertviz_js/``, Apache-2.0) are inlined with the attention data; their
``require.config`` is pointed at require.js / d3 / jQuery served by the app (``static/bertviz/``) instead of a CDN.
The data is embedded as JSON inside a ``<script>`` element with ``<``, ``>``, ``&`` and the JS line separators
escaped, so a token such as ``</script><img onerror=...>`` from a report stays data; bertviz draws tokens with d3's
``.text()``, never as HTML. The HTML grows with ``layers x heads x T^2``: callers cap ``T`` (``MAX_TOKENS``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.types import ReportLensError

JS_DIR = Path(__file__).resolve().parent / "bertviz_js"
MAX_TOKENS = 48  # 6 layers x 12 heads (MiniLM): about 2 MB of HTML; 64 tokens: about 4 MB
CDN = {"d3": r"https://cdnjs\.cloudflare\.com/ajax/libs/d3/[^']+", "jquery": r"https://cdnjs\.cloudflare\.com/ajax/libs/jquery/[^']+"}
LOCAL = {"d3": "d3.min", "jquery": "jquery.min"}


def static_url(base_url_path: str = "") -> str:
    """Where ``static/bertviz`` is served: ``/app/static/bertviz`` (under ``server.baseUrlPath`` if one is set)."""
    base = base_url_path.strip("/")
    return f"/{base}/app/static/bertviz" if base else "/app/static/bertviz"


def script_json(obj: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no HTML comment, no line separators)."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("&", "\\u0026").replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


@lru_cache(maxsize=4)
def _view_js(name: str, url: str) -> str:
    js = (JS_DIR / f"{name}.js").read_text(encoding="utf-8")
    for lib, pattern in CDN.items():
        js, n = re.subn(pattern, f"{url}/{LOCAL[lib]}", js)
        if n != 1:
            raise RuntimeError(f"{name}.js: expected one CDN path for {lib}, found {n}; bertviz changed.")
    return js


def _weights(attentions: np.ndarray) -> list:
    """Weights rounded to 3 decimals as float64 (float32 values would print as 0.012299999594688416: 6x the HTML)."""
    return np.round(attentions.astype(np.float64), 3).tolist()


def _prettify(tokens: Sequence[str]) -> list[str]:
    return [t.replace("Ġ", " ").replace("▁", " ").replace("</w>", "") for t in tokens]


def _check(tokens: Sequence[str], attentions: np.ndarray) -> None:
    if attentions.ndim != 4 or attentions.shape[-1] != attentions.shape[-2] or attentions.shape[-1] != len(tokens):
        raise ReportLensError(f"bertviz needs attention of shape (layers, heads, T, T) for {len(tokens)} tokens; got "
                              f"{attentions.shape}.")
    if len(tokens) > MAX_TOKENS:
        raise ReportLensError(f"{len(tokens)} tokens are too many for bertviz (its HTML grows with the square of the "
                              f"length); show at most {MAX_TOKENS}, or use the heatmaps.")


def _page(vis_id: str, controls: str, js: str, url: str, params: dict) -> str:
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<script src="{url}/require.js"></script></head>
<body style="margin:0;background:#fff">
<div id="{vis_id}" style="font-family:'Helvetica Neue', Helvetica, Arial, sans-serif;">
<span style="user-select:none">{controls}</span>
<div id="vis"></div>
</div>
<script type="text/javascript">
{js.replace("PYTHON_PARAMS", script_json(params))}
</script>
</body></html>"""


def head_view_html(tokens: Sequence[str], attentions: np.ndarray, url: str = "/app/static/bertviz",
                   layer: int | None = None) -> str:
    """bertviz's head view: one layer at a time (a select box), heads as colours, lines from token to token."""
    _check(tokens, attentions)
    layers = list(range(attentions.shape[0]))
    if layer is not None and layer not in layers:
        raise ReportLensError(f"Layer {layer} does not exist; the model has layers 0..{len(layers) - 1}.")
    vis_id = f"bertviz-{uuid.uuid4().hex}"
    text = _prettify(tokens)
    params = {"attention": [{"name": None, "attn": _weights(attentions), "left_text": text,
                             "right_text": text}],
              "default_filter": "0", "root_div_id": vis_id, "layer": layer, "heads": None, "include_layers": layers}
    return _page(vis_id, 'Layer: <select id="layer"></select>', _view_js("head_view", url), url, params)


def model_view_html(tokens: Sequence[str], attentions: np.ndarray, url: str = "/app/static/bertviz",
                    display_mode: str = "light") -> str:
    """bertviz's model view: a thumbnail per layer and head; click one to enlarge it."""
    _check(tokens, attentions)
    if display_mode not in ("light", "dark"):
        raise ReportLensError(f"display_mode must be 'light' or 'dark', not {display_mode!r}.")
    vis_id = f"bertviz-{uuid.uuid4().hex}"
    text = _prettify(tokens)
    n_layers, n_heads = attentions.shape[:2]
    params = {"attention": [{"name": None, "attn": _weights(attentions), "left_text": text,
                             "right_text": text}],
              "default_filter": "0", "display_mode": display_mode, "root_div_id": vis_id,
              "include_layers": list(range(n_layers)), "include_heads": list(range(n_heads)),
              "total_heads": n_heads}
    return _page(vis_id, "", _view_js("model_view", url), url, params)


def head_view_height(n_tokens: int) -> int:
    return int(n_tokens * 22.5 + 90)


def model_view_height(n_tokens: int, n_layers: int, n_heads: int) -> int:
    thumb = n_tokens * 7 * (12 / max(n_heads, 1)) + 10
    detail = n_tokens * 20 + 60
    return int(max(n_layers * thumb + 60, detail) + 40)
