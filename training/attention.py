"""Attention matrices of a saved model version for one report, window by window (never truncated).

The model is loaded with ``attn_implementation="eager"`` (the default ``sdpa`` kernel returns no attention) through
:func:`training.inference.load_model`, and the report is cut into exactly the windows inference uses
(:func:`training.inference.prepare_documents`). Each window gives a ``(layers, heads, T, T)`` array with its token
strings and character offsets as a :class:`core.explain.AttentionWindow`; the math on it lives in
:mod:`core.explain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.alignment import Window
from core.explain import AttentionWindow
from core.types import ReportLensError
from training.inference import LoadedModel, load_model, prepare_documents


def load_attention_model(model_dir: str | Path) -> LoadedModel:
    """A saved model version with eager attention (cached per process like :func:`load_model`)."""
    if not Path(model_dir).is_dir():
        raise ReportLensError(f"Model folder {model_dir} does not exist; retrain the version or restore the data "
                              "folder.")
    return load_model(model_dir, attn_implementation="eager")


def document_windows(loaded: LoadedModel, text: str, doc_id: Any = None) -> list[Window]:
    """The model windows of ``text`` (``[CLS] content [SEP]``, the training/inference ``max_length``/``stride``)."""
    (prepared,) = prepare_documents(loaded.tokenizer, [(doc_id, text)], loaded.config.align())
    return list(prepared.windows)


def window_attention(loaded: LoadedModel, window: Window, n_windows: int = 1) -> AttentionWindow:
    """Run one window through the model and return every layer's and head's attention over its tokens."""
    import torch

    model = loaded.model
    device = next(model.parameters()).device
    ids = torch.tensor([list(window.input_ids)], dtype=torch.long, device=device)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
    attentions = getattr(out, "attentions", None)
    if not attentions or any(a is None for a in attentions):
        raise ReportLensError("The model returned no attention weights: it was loaded with an attention kernel "
                              "(sdpa/flash) that does not expose them; load it with attn_implementation='eager'.")
    stack = np.stack([a[0].float().cpu().numpy() for a in attentions]).astype(np.float32)
    return AttentionWindow(doc_id=window.doc_id, index=window.index, n_windows=n_windows,
                           token_start=window.token_start, token_end=window.token_end,
                           tokens=tuple(window.tokens), offsets=tuple(tuple(o) for o in window.offsets),
                           attentions=stack)


def document_attention(loaded: LoadedModel, text: str, doc_id: Any = None,
                       windows: Sequence[int] | None = None) -> list[AttentionWindow]:
    """Attention of the chosen windows of a report (all of them by default), in window order."""
    layout = document_windows(loaded, text, doc_id)
    chosen = range(len(layout)) if windows is None else windows
    out = []
    for w in chosen:
        if not 0 <= w < len(layout):
            raise ReportLensError(f"Window {w} does not exist: this report has {len(layout)} window(s) "
                                  f"(0..{len(layout) - 1}).")
        out.append(window_attention(loaded, layout[w], len(layout)))
    return out
