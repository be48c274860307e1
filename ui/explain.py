"""The Explain page's blocks: the report picker, the attention window and its layer/head/entity controls, the
attention tab (heatmaps, rollout, every head, entity bars), the bertviz tab and the feature-importance tab.

Everything reaches the data and the models through :mod:`services.explain`; the figures are :mod:`ui.explain_figs`,
the bertviz HTML :mod:`ui.bertviz`. Runs of the model and fits of the forest are cached per database URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import streamlit as st

from core.explain import (
    entity_bars,
    head_mean,
    rollout,
    special_positions,
    top_tokens,
    view_ranges,
    window_around,
    word_windows,
)
from core.types import Entity, ReportLensError
from services import explain as svc
from services.app import database_url
from ui import bertviz
from ui.explain_figs import entity_bar_figure, head_grid, heatmap, importance_bars, metrics_bars, png_config
from ui.state import engine

TARGETS = {"choices": "document labels (Choices)", "presence": "presence of each entity type",
           "entity": "entity type from its context words"}


@st.cache_data(show_spinner="Running the model on the report…", max_entries=8)
def _attention(url: str, project_id: int, version_id: int, doc_id: int, window: int) -> svc.AttentionView:
    return svc.attention_view(engine(), svc.pick_version(engine(), project_id, version_id), doc_id, window)


@st.cache_data(show_spinner="Fitting the random forest…", max_entries=8)
def _features(url: str, project_id: int, version_id: int | None, target: str, data_version: str) -> svc.FeatureReport:
    return svc.feature_report(engine(), project_id, target, version_id)


def chart(fig: Any, name: str) -> None:
    st.plotly_chart(fig, width="stretch", config=png_config(name))


def _stop_on(exc: ReportLensError) -> NoReturn:
    st.error(str(exc))
    st.stop()


# ---------------------------------------------------------------- report and window


def report_picker(project: Any, versions: Sequence[Any]) -> tuple[Any, Any]:
    """The model version (active one first chosen) and the report, searched by text; stops when nothing matches."""
    active = next((i for i, v in enumerate(versions) if v.is_active), 0)
    c1, c2, c3 = st.columns([1, 3, 1])
    version = c1.selectbox("Model version", versions, index=active, format_func=lambda v: v.name + (
        " (active)" if v.is_active else ""), key="explain_version")
    search = c3.text_input("Search reports", key="explain_search")
    docs, total = svc.documents(engine(), project.id, search=search, limit=200)
    if not docs:
        st.info("No report matches the search.")
        st.stop()
    doc = c2.selectbox(f"Report ({total} found, first 200 listed)", docs, key="explain_doc",
                       format_func=lambda d: f"#{d.id} · {d.preview[:80]}")
    return version, doc


def attention_window(project_id: int, version_id: int, doc_id: int) -> svc.AttentionView:
    """The attention of the report's first window, or of the window the slider picks for a long report."""
    try:
        first = _attention(database_url(), project_id, version_id, doc_id, 0)
        window = 0
        if first.n_windows > 1:
            window = st.slider("Model window (long reports are read window by window)", 0, first.n_windows - 1, 0,
                               key="explain_window")
        return first if window == 0 else _attention(database_url(), project_id, version_id, doc_id, window)
    except ReportLensError as exc:
        _stop_on(exc)


@dataclass(frozen=True)
class Selection:
    """What the layer / head / entity controls chose, and the matrices they pick out of the window."""

    layer: int
    head: int | str  # a head index or "mean of heads"
    entity: Entity | None
    ent_pos: list[int]
    means: np.ndarray  # (layers, T, T): mean over heads
    matrix: np.ndarray  # (T, T): the chosen layer and head
    what: str  # "layer 5, mean of heads"


def controls(av: svc.AttentionView) -> Selection:
    win = av.window
    c1, c2, c3 = st.columns(3)
    layer = c1.selectbox("Layer", list(range(win.n_layers)), index=win.n_layers - 1, key="explain_layer")
    head = c2.selectbox("Head", ["mean of heads", *range(win.n_heads)], key="explain_head")
    in_window = av.entities_in_window()
    entity_i = c3.selectbox("Entity", [None, *[i for i, _ in in_window]], key="explain_entity", format_func=lambda i: (
        "(none)" if i is None else f"{av.entities[i].label} [{av.entities[i].start}:{av.entities[i].end}] "
        f"{av.entities[i].source}"))
    entity = av.entities[entity_i] if entity_i is not None else None
    ent_pos = av.entity_positions(entity) if entity is not None else []
    means = head_mean(win.attentions)
    matrix = means[layer] if head == "mean of heads" else win.attentions[layer, head]
    what = f"layer {layer}, {'mean of heads' if head == 'mean of heads' else f'head {head}'}"
    return Selection(layer, head, entity, ent_pos, means, matrix, what)


# ---------------------------------------------------------------- tabs


def _positions(av: svc.AttentionView, sel: Selection) -> list[int]:
    win = av.window
    mode = st.radio("Tokens shown", ["top tokens", "consecutive slice"], horizontal=True, key="explain_mode")
    if mode == "top tokens":
        k = st.slider("How many tokens", 5, min(80, win.n_tokens), min(40, win.n_tokens), key="explain_k") \
            if win.n_tokens > 5 else win.n_tokens
        specials = special_positions(win.offsets)
        return top_tokens(sel.matrix, k, keep=sel.ent_pos, skip_special=specials if win.n_tokens > k else ())
    ranges = view_ranges(win.n_tokens, 40)
    part = st.selectbox("Part", range(len(ranges)), key="explain_part",
                        format_func=lambda r: f"tokens {ranges[r][0]}–{ranges[r][1] - 1}")
    return list(range(*ranges[part]))


def attention_tab(av: svc.AttentionView, sel: Selection, doc_id: int, version_name: str) -> None:
    """Heatmaps of the chosen head and of the rollout, optionally every head, and the entity's attention bars."""
    win, layer, matrix = av.window, sel.layer, sel.matrix
    st.caption(f"{win.n_tokens} tokens in window {win.index + 1} of {av.n_windows}. Rows attend to columns; each "
               "row of the full matrix sums to 1 (a shown subset does not).")
    positions = _positions(av, sel)
    name = f"attention-doc{doc_id}-{version_name}-w{win.index}"
    chart(heatmap(matrix, win.tokens, positions, f"Attention, {sel.what}"), f"{name}-l{layer}")
    roll = rollout(win.attentions)[layer]
    chart(heatmap(roll, win.tokens, positions, f"Attention rollout through layer {layer}"), f"{name}-rollout")
    if st.toggle("All heads of this layer", key="explain_grid"):
        chart(head_grid(win.attentions[layer], win.tokens, positions, f"Layer {layer}, every head"),
              f"{name}-l{layer}-heads")
    st.download_button("Attention shown (CSV)", svc.to_csv(svc.matrix_rows(matrix, win.tokens, positions),
                       svc.MATRIX_COLUMNS), file_name=f"{name}-l{layer}.csv", mime="text/csv")
    if sel.entity is not None:
        source = st.radio("Bars from", ["this layer/head", "rollout"], horizontal=True, key="explain_bar_src")
        bars = entity_bars(matrix if source == "this layer/head" else roll, sel.ent_pos)
        shown = sel.what if source != "rollout" else "rollout"
        title = f"{sel.entity.label} entity: attention to and from it ({shown})"
        chart(entity_bar_figure(win.tokens, positions, bars.to_entity, bars.from_entity, bars.entity_tokens, title),
              f"{name}-entity")
        st.download_button("Entity bars (CSV)", svc.to_csv(svc.bar_rows(win.tokens, range(win.n_tokens),
                           bars.to_entity, bars.from_entity, bars.entity_tokens), svc.BAR_COLUMNS),
                           file_name=f"{name}-entity.csv", mime="text/csv")
    elif av.entities:
        st.caption("Pick an entity to see how much each token attends to it and is attended from it.")


def _bertviz_window(av: svc.AttentionView, sel: Selection) -> tuple[int, int]:
    """The consecutive tokens bertviz shows: the whole window when it fits, else ``MAX_TOKENS`` tokens on word
    boundaries, first around the chosen entity, then wherever the slider moves them."""
    win, cap = av.window, bertviz.MAX_TOKENS
    windows = word_windows(win.offsets, cap)
    if len(windows) == 1:
        return windows[0]
    start = window_around(windows, sel.ent_pos)
    entity = "none" if sel.entity is None else f"{sel.entity.start}-{sel.entity.end}"
    pick = st.select_slider(
        "bertviz tokens from", options=list(range(len(windows))), value=start,
        key=f"explain_bertviz_from-w{win.index}-e{entity}",
        format_func=lambda w: f"{windows[w][0]} {win.tokens[windows[w][0]]} … {windows[w][1] - 1} "
                              f"{win.tokens[windows[w][1] - 1]}")
    a, b = windows[pick]
    st.caption(f"This window has {win.n_tokens} tokens; bertviz shows {b - a} consecutive ones ({a}–{b - 1}, whole "
               f"words; its page grows with the square of the length). Move the slider for the rest, or use the "
               "heatmaps for the whole window.")
    return a, b


def bertviz_tab(av: svc.AttentionView, sel: Selection) -> None:
    """bertviz's head view (the chosen layer; the chosen head, or all heads) or model view (every layer; the chosen
    head's column, or all heads) of consecutive tokens of the window."""
    win = av.window
    a, b = _bertviz_window(av, sel)
    sub = win.attentions[:, :, a:b, a:b]
    tokens = list(win.tokens[a:b])
    heads = None if sel.head == "mean of heads" else [int(sel.head)]
    url = bertviz.static_url(st.get_option("server.baseUrlPath") or "")
    kind = st.radio("bertviz view", ["head view", "model view"], horizontal=True, key="explain_bertviz")
    try:
        if kind == "head view":
            st.caption(f"Layer {sel.layer} ({'every head, one colour each' if heads is None else f'head {sel.head}'})"
                       " from the controls above; the coloured squares switch heads on and off.")
            html = bertviz.head_view_html(tokens, sub, url, layer=sel.layer, heads=heads)
            height = bertviz.head_view_height(len(tokens))
        else:
            st.caption(f"Every layer (rows), {'every head' if heads is None else f'head {sel.head}'} (columns); "
                       "click a thumbnail to enlarge it.")
            html = bertviz.model_view_html(tokens, sub, url, heads=heads)
            height = bertviz.model_view_height(len(tokens), win.n_layers, win.n_heads)
    except ReportLensError as exc:  # bertviz or its JavaScript libraries not installed
        _stop_on(exc)
    st.iframe(html, height=height, alt=f"bertviz {kind}")


def features_tab(project: Any, versions: Sequence[Any]) -> None:
    """Random forest and decision tree on the fixed split, F1 beside the BERT version, importances, one tree."""
    docs, data_version = svc.load_corpus(engine(), project.id)
    targets = svc.available_targets(docs)
    if not targets:
        st.info(f"**{project.name}** has no labeled report with entities or document labels yet.")
        st.stop()
    c1, c2 = st.columns(2)
    target = c1.radio("Predict", targets, format_func=TARGETS.get, key="explain_target")
    version = c2.selectbox("Compare with model version", [None, *versions], key="explain_cmp_version",
                           index=next((i + 1 for i, v in enumerate(versions) if v.is_active), 0),
                           format_func=lambda v: "(none)" if v is None else v.name)
    try:
        rep = _features(database_url(), project.id, version.id if version else None, target, data_version)
    except ReportLensError as exc:
        _stop_on(exc)
    res = rep.result
    st.caption(f"Split: {rep.split.source}; {res.n_train} training and {res.n_eval} {res.eval_split} samples; "
               f"{res.n_features} features (w: words and word pairs, section headers removed; c: character n-grams; "
               "e: entity and context words).")
    for note in (*rep.notes, *res.notes):
        st.warning(note)
    chart(metrics_bars([r for r in rep.comparison if not r["label"].startswith("(")],
                       f"F1 per label on the {res.eval_split} split"), f"rf-vs-bert-{project.name}-{target}")
    st.dataframe(pd.DataFrame(list(rep.comparison), columns=svc.COMPARISON_COLUMNS), hide_index=True, width="stretch")
    top = res.top(20)
    chart(importance_bars([i.feature for i in top], [i.impurity for i in top], None,
                          "Top features by impurity (mean decrease in Gini, training data)", "importance"),
          f"rf-impurity-{target}")
    perm = res.top(20, by="permutation")
    if res.permutation_note:
        st.info(res.permutation_note)
    elif perm:
        chart(importance_bars([i.feature for i in perm], [i.permutation_mean or 0.0 for i in perm],
                              [i.permutation_std or 0.0 for i in perm],
                              f"Top features by permutation importance (drop in micro F1, {res.eval_split} split)",
                              "F1 drop"), f"rf-permutation-{target}")
    _groups_chart(res, target)
    st.subheader("One decision tree")
    st.code(res.tree_text, language=None)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Importances (CSV)", svc.to_csv(svc.importance_rows(res), svc.IMPORTANCE_COLUMNS),
                       file_name=f"rf-importances-{target}.csv", mime="text/csv")
    c2.download_button("Feature groups (CSV)", svc.to_csv(svc.group_rows(res), svc.GROUP_COLUMNS),
                       file_name=f"rf-feature-groups-{target}.csv", mime="text/csv")
    c3.download_button("Metrics (CSV)", svc.to_csv(rep.comparison, svc.COMPARISON_COLUMNS),
                       file_name=f"rf-vs-bert-{target}.csv", mime="text/csv")


def _groups_chart(res: Any, target: str) -> None:
    """Permutation importance of groups of correlated words, shuffled together (core.feature_groups)."""
    if not res.groups:
        return
    share = res.config.get("group_correlation", 0.5)
    what = (f"The same {sum(len(g.features) for g in res.groups)} features, grouped: words whose columns correlate "
            f"(|Spearman| at least {share:g} on average, training data) stand in for each other, so each group is "
            "shuffled together. A group is named by its words with the highest impurity importance.")
    shown = res.groups[:20]
    if not any(abs(g.permutation_mean) > 1e-12 or g.permutation_std > 1e-12 for g in shown):
        st.info(f"{what} Shuffling any one group changed no prediction either: the signal is spread across "
                "groups, so the impurity chart is the ranking to read.")
        return
    chart(importance_bars([g.name for g in shown], [g.permutation_mean for g in shown],
                          [g.permutation_std for g in shown],
                          f"Feature groups by permutation importance (drop in micro F1, {res.eval_split} split)",
                          "F1 drop"), f"rf-groups-{target}")
    st.caption(f"{what} A group at zero is covered by the others: shuffled alone it changes no prediction.")
