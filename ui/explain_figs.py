"""Plotly figures for the Explain page. Token strings come from report text: plotly draws text with a small set of
HTML-like tags (``<b>``, ``<a href>``, ``<br>``), so every label is passed through ``html.escape`` and shows as
typed. No streamlit here, so the figures are testable on their own."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.explain import token_labels

PNG_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def png_config(filename: str) -> dict:
    """``st.plotly_chart(config=...)``: the modebar's camera button saves a PNG in the browser (works offline)."""
    return {**PNG_CONFIG, "toImageButtonOptions": {**PNG_CONFIG["toImageButtonOptions"], "filename": filename}}


def safe_labels(tokens: Sequence[str]) -> list[str]:
    return [html.escape(t) for t in token_labels(tokens)]


def heatmap(matrix: np.ndarray, tokens: Sequence[str], positions: Sequence[int], title: str) -> go.Figure:
    """Token-to-token heatmap of ``matrix[positions][:, positions]`` (rows: attending token, columns: attended)."""
    idx = list(positions)
    labels = safe_labels(tokens)
    names = [labels[i] for i in idx]
    sub = matrix[np.ix_(idx, idx)]
    fig = go.Figure(go.Heatmap(
        z=sub, x=names, y=names, colorscale="Blues", zmin=0.0, zmax=float(max(sub.max(initial=0.0), 1e-6)),
        hovertemplate="from %{y}<br>to %{x}<br>weight %{z:.3f}<extra></extra>", colorbar={"title": "weight"}))
    side = max(360, min(1100, 22 * len(idx) + 160))
    fig.update_layout(title=html.escape(title), height=side, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      yaxis={"autorange": "reversed", "type": "category"}, xaxis={"type": "category", "tickangle": -60})
    return fig


def head_grid(stack: np.ndarray, tokens: Sequence[str], positions: Sequence[int], title: str) -> go.Figure:
    """All heads of one layer side by side (``stack``: ``(heads, T, T)``), same colour scale."""
    from plotly.subplots import make_subplots

    idx = list(positions)
    labels = safe_labels(tokens)
    names = [labels[i] for i in idx]
    n = stack.shape[0]
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"head {h}" for h in range(n)],
                        horizontal_spacing=0.03, vertical_spacing=0.08)
    zmax = float(max(stack[:, idx][:, :, idx].max(initial=0.0), 1e-6))
    for h in range(n):
        fig.add_trace(go.Heatmap(z=stack[h][np.ix_(idx, idx)], x=names, y=names, coloraxis="coloraxis",
                                 hovertemplate=f"head {h}<br>from %{{y}}<br>to %{{x}}<br>%{{z:.3f}}<extra></extra>"),
                      row=h // cols + 1, col=h % cols + 1)
    fig.update_xaxes(showticklabels=len(idx) <= 24, type="category", tickangle=-60)
    fig.update_yaxes(showticklabels=len(idx) <= 24, type="category", autorange="reversed")
    fig.update_layout(title=html.escape(title), height=260 * rows + 120, coloraxis={"colorscale": "Blues",
                      "cmin": 0.0, "cmax": zmax}, margin={"l": 10, "r": 10, "t": 60, "b": 10})
    return fig


def entity_bar_figure(tokens: Sequence[str], positions: Sequence[int], to_entity: np.ndarray,
                      from_entity: np.ndarray, entity_tokens: Sequence[int], title: str) -> go.Figure:
    labels = safe_labels(tokens)
    idx = list(positions)
    names = [labels[i] for i in idx]
    marks = ["entity" if i in set(entity_tokens) else "" for i in idx]
    fig = go.Figure([
        go.Bar(name="attends to the entity", x=names, y=[float(to_entity[i]) for i in idx], customdata=marks,
               hovertemplate="%{x}<br>share of its attention on the entity: %{y:.3f} %{customdata}<extra></extra>"),
        go.Bar(name="attended from the entity", x=names, y=[float(from_entity[i]) for i in idx], customdata=marks,
               hovertemplate="%{x}<br>share of the entity's attention: %{y:.3f} %{customdata}<extra></extra>"),
    ])
    fig.update_layout(barmode="group", title=html.escape(title), height=420, xaxis={"type": "category",
                      "tickangle": -60}, yaxis={"range": [0, 1], "title": "attention share"},
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend={"orientation": "h"})
    return fig


def importance_bars(names: Sequence[str], values: Sequence[float], errors: Sequence[float] | None,
                    title: str, axis: str) -> go.Figure:
    shown = [html.escape(n) for n in names][::-1]
    fig = go.Figure(go.Bar(x=list(values)[::-1], y=shown, orientation="h",
                           error_x={"type": "data", "array": list(errors)[::-1]} if errors is not None else None,
                           hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    fig.update_layout(title=html.escape(title), height=max(300, 22 * len(shown) + 120), xaxis={"title": axis},
                      yaxis={"type": "category"}, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def metrics_bars(rows: Sequence[dict], title: str) -> go.Figure:
    """Grouped bars of F1 per label, one group per model (rows: ``{"label", "model", "f1"}``)."""
    fig = go.Figure()
    for model in dict.fromkeys(r["model"] for r in rows):
        sel = [r for r in rows if r["model"] == model and r.get("f1") is not None]
        fig.add_trace(go.Bar(name=html.escape(model), x=[html.escape(r["label"]) for r in sel],
                             y=[r["f1"] for r in sel]))
    fig.update_layout(barmode="group", title=html.escape(title), yaxis={"range": [0, 1], "title": "F1"},
                      height=400, margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend={"orientation": "h"})
    return fig
