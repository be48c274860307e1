"""The Train page's form: one widget per ``TrainConfig`` field (from ``services.training.form_fields``), read as
text where the user types numbers, and turned into values with messages that say which field and why (never a
traceback); and what a run will do before it starts (:func:`show_plan`): its steps, its time at the speed measured on
this machine, and why each default has its value."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from core.trainconfig import TrainConfig, explain_defaults
from core.trainplan import TrainPlan, train_share
from core.types import ReportLensError
from services.trainplan import WindowCount, count_windows, train_plan
from ui.state import engine


def _label(spec: dict[str, Any]) -> str:
    return spec["name"].replace("_", " ")


def number(spec: dict[str, Any], raw: str) -> int | float | None:
    """``raw`` (what was typed) as the field's number; ``None`` for an optional field left blank. Raises
    :class:`ReportLensError` naming the field for text that is not a number, or not a whole one for an integer."""
    text = raw.strip()
    if not text:
        if spec.get("optional"):
            return None
        raise ReportLensError(f"{_label(spec)} is empty; type a number (default {spec['default']}).")
    try:
        value = float(text)
    except ValueError:
        example = spec["default"] if spec["default"] is not None else 10 if spec["type"] == "int" else 0.001
        raise ReportLensError(f"{_label(spec)}: {text!r} is not a number; type e.g. {example}.") from None
    if not math.isfinite(value):
        raise ReportLensError(f"{_label(spec)}: {text!r} is not a finite number.")
    if spec["type"] != "int":
        return value
    if not value.is_integer():
        raise ReportLensError(f"{_label(spec)} must be a whole number; got {text!r}.")
    return int(value)


def widget(spec: dict[str, Any], container: Any, prefix: str = "cfg_") -> Any:
    """The widget of one field. Optional numbers (blank = auto) come back as the typed text, parsed by
    :func:`values_to_config`; the others from number inputs."""
    label, default, help_ = _label(spec), spec["default"], spec.get("help")
    key = f"{prefix}{spec['name']}"
    if spec["type"] == "choice":
        return container.selectbox(label, spec["choices"], index=list(spec["choices"]).index(default), help=help_,
                                   key=key)
    if spec["type"] == "bool":
        return container.checkbox(label, value=bool(default), help=help_, key=key)
    if spec["type"] == "list":
        return container.text_input(label, ",".join(default), help=help_, key=key)
    if spec.get("optional"):
        return container.text_input(label + " (blank = auto)", "" if default is None else str(default), help=help_,
                                    key=key)
    if spec["type"] == "str":
        return container.text_input(label, "" if default is None else str(default), help=help_, key=key)
    if spec["type"] == "int":
        return container.number_input(label, value=int(default), step=1, help=help_, key=key)
    if spec["type"] == "float":
        return container.number_input(label, value=float(default), format="%g", help=help_, key=key)
    return container.text_input(label, str(default), help=help_, key=key)


def train_form(specs: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """The form (basic fields in three columns, the rest under "Advanced settings"); returns the raw values and
    whether it was submitted."""
    values: dict[str, Any] = {}
    with st.form("train_form"):
        cols = st.columns(3)
        for i, spec in enumerate(s for s in specs if not s.get("advanced")):
            values[spec["name"]] = widget(spec, cols[i % 3])
        with st.expander("Advanced settings"):
            acols = st.columns(3)
            for i, spec in enumerate(s for s in specs if s.get("advanced")):
                values[spec["name"]] = widget(spec, acols[i % 3])
        submitted = st.form_submit_button("Start training", type="primary")
    return values, submitted


def values_to_config(specs: list[dict[str, Any]], values: dict[str, Any], cls: Any = TrainConfig) -> Any:
    """The config (``cls``, a ``TrainConfig`` by default) the form asks for; :class:`ReportLensError` (one field,
    what is wrong) otherwise."""
    out: dict[str, Any] = {}
    for spec in specs:
        raw = values[spec["name"]]
        if spec["type"] in ("int", "float") and isinstance(raw, str):
            out[spec["name"]] = number(spec, raw)
        elif spec["type"] == "list":
            out[spec["name"]] = tuple(x.strip() for x in str(raw).split(",") if x.strip())
        elif spec["type"] == "str" and spec.get("optional") and not str(raw).strip():
            out[spec["name"]] = None
        else:
            out[spec["name"]] = raw
    return cls.from_dict(out)


ADAPT_BASIC = ("name", "parent", "vocab_min_count", "vocab_max_new", "mlm_steps", "method")


def adapt_form(specs: list[dict[str, Any]], parents: list[str]) -> tuple[dict[str, Any], bool]:
    """The Adapt form: the parent base (``bundled`` or a base version; a folder under the advanced settings), the
    vocabulary threshold and cap, MLM steps, LoRA or full; returns the raw values and whether it was submitted."""
    values: dict[str, Any] = {}
    with st.form("adapt_form"):
        cols = st.columns(3)
        basic = [s for s in specs if s["name"] in ADAPT_BASIC]
        for i, spec in enumerate(basic):
            if spec["name"] == "parent":
                values["parent"] = cols[i % 3].selectbox("parent base model", parents, help=spec.get("help"),
                                                         key="adapt_parent")
            else:
                values[spec["name"]] = widget(spec, cols[i % 3], prefix="adapt_")
        with st.expander("Advanced settings"):
            folder = st.text_input("parent model folder (overrides the choice above)", "", key="adapt_parent_dir",
                                   help="a local Hugging Face model folder, or a Hub id in the local cache "
                                        "(HF_HUB_OFFLINE=1)")
            acols = st.columns(3)
            for i, spec in enumerate(s for s in specs if s["name"] not in ADAPT_BASIC):
                values[spec["name"]] = widget(spec, acols[i % 3], prefix="adapt_")
        submitted = st.form_submit_button("Start adaptation")
    if folder.strip():
        values["parent"] = folder.strip()
    return values, submitted


@st.cache_data(show_spinner="Counting the training windows…", max_entries=32)
def _windows(database: str, project_id: int, n_labeled: int, base_model: str, max_length: int,
             stride: int) -> WindowCount:
    del database, n_labeled  # cache keys: counted again after an import or new labels
    return count_windows(engine(), project_id, base_model, max_length, stride)


def run_plan(project: Any, config: TrainConfig | None = None) -> TrainPlan:
    """What a run of ``config`` (the defaults) will do in ``project``, timed at the speed measured on this machine."""
    config = config or TrainConfig()
    windows = _windows(str(engine().url), project.id, project.n_labeled, config.base_model, config.max_length,
                       config.stride)
    return train_plan(engine(), project.id, config, windows)


def show_plan(project: Any, config: TrainConfig | None = None) -> TrainPlan:
    """Before a run: its steps and estimated time (one caption starting "About "), how the windows were counted
    and where the speed comes from, and the chosen defaults with a reason each."""
    plan = run_plan(project, config)
    chosen = config or TrainConfig()
    st.caption(plan.summary())
    measured = "" if plan.speed.measured else " The time is a rough figure until a first model is trained here."
    share = train_share(chosen, plan.n_docs)
    who = ("all the reports train (too few for dev and test splits: dev scores then measure the training set)"
           if share == 1.0 else f"about {share:.0%} of the reports train (the rest are the "
           f"{'test split; dev trains too' if chosen.train_on_dev else 'dev and test splits'})")
    st.caption(f"Counted: {plan.windows_note}; {who}. Cancel a run any time.{measured}")
    with st.expander("Why these settings", expanded=True):
        windows = _windows(str(engine().url), project.id, project.n_labeled, chosen.base_model, chosen.max_length,
                           chosen.stride)  # cached: the count run_plan made
        rows = explain_defaults(chosen, plan.n_windows, plan.n_docs, windows.new_vocab_rows)
        st.table(pd.DataFrame([{"setting": f.replace("_", " "), "value": f"{v:g}" if isinstance(v, float) else str(v),
                                "why": why} for f, v, why in rows]).set_index("setting"))
    return plan
