"""bertviz head view and model view as standalone HTML for ``st.iframe``, with no request outside the machine.

bertviz's view scripts (``head_view.js``, ``model_view.js``) are read from the installed ``bertviz`` package
(requirements.txt) and inlined with the attention data; their ``require.config`` is pointed at require.js / d3 /
jQuery that ``make setup`` installs from npm (``package-lock.json``) into ``static/vendor/`` and the app serves,
instead of a CDN. The data is embedded as JSON inside a ``<script>`` element with ``<``, ``>``, ``&`` and the JS line
separators escaped, so a token such as ``</script><img onerror=...>`` from a report stays data; bertviz draws tokens
with d3's ``.text()``, never as HTML. The HTML grows with ``layers x heads x T^2``: callers cap ``T`` (``MAX_TOKENS``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import uuid
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.types import ReportLensError

MAX_TOKENS = 48  # 6 layers x 12 heads (MiniLM): about 2 MB of HTML; 64 tokens: about 4 MB
VENDOR = "vendor/node_modules"  # under static/, where `make setup` runs `npm ci`
VENDOR_DIR = Path(__file__).resolve().parents[1] / "static" / VENDOR
# the file of each npm package the views load, relative to VENDOR; require.js paths drop ".js"
SCRIPTS = {"requirejs": "requirejs/require.js", "d3": "d3/dist/d3.min.js", "jquery": "jquery/dist/jquery.min.js"}
CDN = {"d3": r"https://cdnjs\.cloudflare\.com/ajax/libs/d3/[^']+", "jquery": r"https://cdnjs\.cloudflare\.com/ajax/libs/jquery/[^']+"}
SETUP_HINT = "run `make setup` (it runs `pip install -r requirements.txt` and `npm ci`)"


def static_url(base_url_path: str = "") -> str:
    """Where ``static/vendor/node_modules`` is served: ``/app/static/...`` (under ``server.baseUrlPath`` if set)."""
    base = base_url_path.strip("/")
    return f"/{base}/app/static/{VENDOR}" if base else f"/app/static/{VENDOR}"


def check_scripts(vendor_dir: Path | None = None) -> None:
    """Raise a ReportLensError saying how to install them if require.js, d3 or jQuery is not in ``vendor_dir``."""
    vendor_dir = VENDOR_DIR if vendor_dir is None else vendor_dir
    missing = [rel for rel in SCRIPTS.values() if not (vendor_dir / rel).is_file()]
    if missing:
        raise ReportLensError(f"The bertviz views need require.js, d3 and jQuery, but {', '.join(missing)} "
                              f"{'is' if len(missing) == 1 else 'are'} missing from {vendor_dir}; {SETUP_HINT}.")


def bertviz_dir() -> Path:
    """The installed bertviz package's folder, found without importing it (its ``__init__`` imports IPython)."""
    spec = importlib.util.find_spec("bertviz")
    if spec is None or not spec.submodule_search_locations:
        raise ReportLensError(f"The bertviz views need the bertviz package, which is not installed; {SETUP_HINT}.")
    return Path(next(iter(spec.submodule_search_locations)))


def script_json(obj: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no HTML comment, no line separators)."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("&", "\\u0026").replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


@lru_cache(maxsize=4)
def _view_js(name: str, url: str) -> str:
    """bertviz's ``<name>.js`` with its CDN paths for d3 and jQuery replaced by the ones under ``url``."""
    path = bertviz_dir() / f"{name}.js"
    try:
        js = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportLensError(f"Cannot read bertviz's {path}: {exc}; reinstall bertviz ({SETUP_HINT}).") from exc
    for lib, pattern in CDN.items():
        local = f"{url}/{SCRIPTS[lib].removesuffix('.js')}"
        js, n = re.subn(pattern, lambda _, s=local: s, js)
        if n != 1:
            raise ReportLensError(f"{path}: expected one CDN path for {lib}, found {n}: this bertviz is not the "
                                  f"version requirements.txt pins; {SETUP_HINT}.")
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
    check_scripts()
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<script src="{url}/{SCRIPTS['requirejs']}"></script></head>
<body style="margin:0;background:#fff">
<div id="{vis_id}" style="font-family:'Helvetica Neue', Helvetica, Arial, sans-serif;">
<span style="user-select:none">{controls}</span>
<div id="vis"></div>
</div>
<script type="text/javascript">
{js.replace("PYTHON_PARAMS", script_json(params))}
</script>
</body></html>"""


def _subset(name: str, chosen: Sequence[int] | None, n: int) -> list[int]:
    if chosen is None:
        return list(range(n))
    out = sorted({int(c) for c in chosen})
    if not out or out[0] < 0 or out[-1] >= n:
        raise ReportLensError(f"{name} {list(chosen)} do not exist; the model has {name.lower()} 0..{n - 1}.")
    return out


def head_view_html(tokens: Sequence[str], attentions: np.ndarray, url: str = static_url(),
                   layer: int | None = None, heads: Sequence[int] | None = None) -> str:
    """bertviz's head view: heads as colours, lines from token to token, for one layer.

    With ``layer`` given (the page's Layer control) only that layer is embedded and bertviz draws no Layer select of
    its own; without it, every layer is embedded and bertviz's select picks one. ``heads`` are the heads drawn at
    first (all when ``None``); the coloured squares above the tokens toggle them."""
    _check(tokens, attentions)
    n_layers, n_heads = attentions.shape[:2]
    if layer is not None and not 0 <= layer < n_layers:
        raise ReportLensError(f"Layer {layer} does not exist; the model has layers 0..{n_layers - 1}.")
    shown_heads = _subset("Heads", heads, n_heads)
    vis_id = f"bertviz-{uuid.uuid4().hex}"
    text = _prettify(tokens)
    layers = list(range(n_layers)) if layer is None else [layer]
    attn = attentions if layer is None else attentions[layer:layer + 1]
    params = {"attention": [{"name": None, "attn": _weights(attn), "left_text": text, "right_text": text}],
              "default_filter": "0", "root_div_id": vis_id, "layer": layer,
              "heads": None if heads is None else shown_heads, "include_layers": layers}
    controls = 'Layer: <select id="layer"></select>' if layer is None else ""
    return _page(vis_id, controls, _view_js("head_view", url), url, params)


def model_view_html(tokens: Sequence[str], attentions: np.ndarray, url: str = static_url(),
                    display_mode: str = "light", heads: Sequence[int] | None = None) -> str:
    """bertviz's model view: a thumbnail per layer and head (only ``heads`` when given); click one to enlarge it."""
    _check(tokens, attentions)
    if display_mode not in ("light", "dark"):
        raise ReportLensError(f"display_mode must be 'light' or 'dark', not {display_mode!r}.")
    n_layers, n_heads = attentions.shape[:2]
    shown_heads = _subset("Heads", heads, n_heads)
    vis_id = f"bertviz-{uuid.uuid4().hex}"
    text = _prettify(tokens)
    params = {"attention": [{"name": None, "attn": _weights(attentions[:, shown_heads]), "left_text": text,
                             "right_text": text}],
              "default_filter": "0", "display_mode": display_mode, "root_div_id": vis_id,
              "include_layers": list(range(n_layers)), "include_heads": shown_heads, "total_heads": n_heads}
    return _page(vis_id, "", _view_js("model_view", url), url, params)


def head_view_height(n_tokens: int) -> int:
    return int(n_tokens * 22.5 + 90)


def model_view_height(n_tokens: int, n_layers: int, n_heads: int) -> int:
    thumb = n_tokens * 7 * (12 / max(n_heads, 1)) + 10
    detail = n_tokens * 20 + 60
    return int(max(n_layers * thumb + 60, detail) + 40)
