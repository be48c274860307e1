"""The Train page's form: one widget per ``TrainConfig`` field (from ``services.training.form_fields``), read as
text where the user types numbers, and turned into values with messages that say which field and why (never a
traceback); and how long a run will take, from the data size and the project's last runs."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from core.jobs import JobKind
from core.trainconfig import TrainConfig
from core.types import ReportLensError
from services import jobs as job_svc


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


def run_estimate(engine: Any, project: Any, config: TrainConfig | None = None) -> str:
    """``"About 110 optimizer steps (7 epochs over ~120 training reports); the last run took 1.2 s a step, so
    about 2 min."``: what the defaults (or ``config``) will do, timed by the project's last finished run."""
    config = config or TrainConfig()
    n_train = max(1, round(project.n_labeled * (1 - config.dev_ratio - config.test_ratio)))
    n_windows = n_train * (1 + config.augment)  # short reports: one window each (long ones add windows)
    epochs = config.epochs_for(n_windows)
    steps = epochs * config.steps_per_epoch(n_windows)
    if config.max_steps is not None:
        steps = min(steps, config.max_steps)
    text = f"About {steps:,} optimizer steps ({epochs} epochs over ~{n_train:,} training reports)"
    per_step = None
    for job in job_svc.recent_jobs(engine, project.id, kind=JobKind.TRAIN, limit=10):
        duration = (job.result or {}).get("duration_s")
        done = job.progress.step
        if job.status == "succeeded" and isinstance(duration, int | float) and done:
            per_step = duration / done
            break
    if per_step is None:
        return text + "; the first run on a laptop CPU takes a few minutes (cancel it any time)."
    total = per_step * steps * (1 + config.cv_folds)
    return text + f"; the last run took {per_step:.2f} s a step, so about {_duration(total)}."


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
