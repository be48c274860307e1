"""Streaming import of Label Studio exports (JSON, JSON-MIN, CoNLL-2003) into :class:`~core.types.ParsedTask`.

Problems in the data become :class:`~core.types.Issue` entries in a :class:`ParseReport` (what, where, how to fix);
only a file that cannot be read at all raises :class:`~core.types.ReportLensError`. Tasks are read one at a time
with ijson, so a large export is never held in memory as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson

from core.conll import iter_conll
from core.exportfile import (
    JSON_BACKEND,
    ExportFormat,
    ParseReport,
    Utf8Reader,
    char_kind,
    check_format,
    check_path,
    detect_format,
    first_char,
    shape_error,
    syntax_error,
    value_kind,
)
from core.labelconfig import LabelConfig, parse_label_config, short_list
from core.lsresults import (
    ParseContext,
    Regions,
    add_choices,
    author_of,
    finish,
    human_annotation,
    model_annotation,
    span_value,
    taxonomy_leaves,
    text_or_none,
)
from core.spancheck import as_offset
from core.types import Annotation, Issue, ParsedTask

__all__ = [
    "ExportFormat",
    "LabelConfig",
    "ParseReport",
    "detect_format",
    "iter_tasks",
    "parse_export",
    "parse_label_config",
]

MIN_ANNOTATION_KEYS = ("annotator", "annotation_id", "created_at", "updated_at")
MIN_META_KEYS = ("id", "lead_time", "agreement")
_REFERENCE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|/|s3:|gs:)\S*$")


def int_id(value: Any) -> int | None:
    """A task id as int when it is one (``12``, ``12.0``, ``"12"``); ``None`` otherwise."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return as_offset(value)


def task_ref(task_id: int | None, position: int) -> str:
    return ParsedTask(text="", task_id=task_id, position=position).ref


def _error(ctx: ParseContext, code: str, message: str, ref: str) -> None:
    ctx.report.add(Issue("error", code, message, task=ref))


# ---------------------------------------------------------------- the text of a task


def _is_reference(value: str) -> bool:
    """A URL or file path (an image, audio or hypertext task), not a report text."""
    return bool(_REFERENCE.match(value.strip()))


def _guess_text_field(data: dict[str, Any], ref: str, ctx: ParseContext, reserved: tuple[str, ...]) -> str | None:
    strings = [k for k, v in data.items() if isinstance(v, str) and k not in reserved and not _is_reference(v)]
    if ctx.config is not None or ctx.text_field_guessed or len(strings) != 1:
        return None
    ctx.text_field = ctx.tally.text_field = strings[0]
    ctx.text_field_guessed = True
    ctx.report.add(
        Issue(
            "info",
            "text_field_guessed",
            f"{ref}: the task data has no 'text' field; reading the text from {strings[0]!r}, its only string field, "
            f'for the whole file. Pass the labeling config (<Text value="${strings[0]}">) to choose it explicitly.',
            task=ref,
        )
    )
    return strings[0]


def pick_text(
    data: dict[str, Any], ref: str, ctx: ParseContext, reserved: tuple[str, ...] = ()
) -> tuple[str, str] | None:
    """The (field, text) of a task, or ``None`` after recording why the task is skipped."""
    field = ctx.text_field if ctx.text_field in data else _guess_text_field(data, ref, ctx, reserved)
    if field is None:
        _error(
            ctx,
            "missing_text_field",
            f"{ref}: the task data has no {ctx.text_field!r} field (fields: {short_list(sorted(data))}); task "
            'skipped. Pass the labeling config whose <Text value="$field"> names the report field.',
            ref,
        )
        return None
    text = data[field]
    if not isinstance(text, str):
        _error(
            ctx,
            "missing_text_field",
            f"{ref}: data[{field!r}] is {value_kind(text)}, not text; task skipped. ReportLens imports plain "
            'text tasks; point the labeling config\'s <Text value="$field"> at a text field.',
            ref,
        )
        return None
    if not text.strip():
        _error(
            ctx,
            "empty_text",
            f"{ref}: the text in data[{field!r}] is empty; task skipped. Fill in the report text or remove the "
            "task in Label Studio.",
            ref,
        )
        return None
    return field, text


# ---------------------------------------------------------------- full JSON export


def _human_annotations(item: dict[str, Any], text: str, ref: str, ctx: ParseContext) -> list[Annotation]:
    anns = item["annotations"] if "annotations" in item else item.get("completions")
    if anns is not None and not isinstance(anns, list):
        _error(
            ctx,
            "bad_annotation",
            f"{ref}: 'annotations' is {value_kind(anns)}, not a list; annotations "
            "skipped. Re-export the project from Label Studio.",
            ref,
        )
        return []
    out = []
    for i, ann in enumerate(anns or []):
        if isinstance(ann, dict):
            out.append(human_annotation(ann, i, text, ref, ctx))
        else:
            _error(
                ctx,
                "bad_annotation",
                f"{ref}: annotation #{i + 1} is {value_kind(ann)}, not an object; "
                "skipped. Re-export the project from Label Studio.",
                ref,
            )
    return out


def _predictions(item: dict[str, Any], text: str, ref: str, ctx: ParseContext) -> list[Annotation]:
    preds = item.get("predictions")
    out: list[Annotation] = []
    for i, pred in enumerate(preds if isinstance(preds, list) else []):
        if int_id(pred) is not None:
            ctx.prediction_ids += 1
        elif isinstance(pred, dict):
            out.append(model_annotation(pred, i, text, ref, ctx))
        else:
            _error(
                ctx, "bad_annotation", f"{ref}: prediction #{i + 1} is {value_kind(pred)}, not an object; skipped.", ref
            )
    return out


def task_from_json(item: dict[str, Any], position: int, ctx: ParseContext) -> ParsedTask | None:
    """One task of a full JSON export, or ``None`` (with an error issue) when it cannot be used."""
    task_id = int_id(item.get("id"))
    ref = task_ref(task_id, position)
    data = item.get("data")
    if not isinstance(data, dict):
        _error(
            ctx,
            "missing_data",
            f"{ref}: the task has no 'data' object (keys: {short_list(sorted(item))}); task skipped. Each task "
            "of a Label Studio JSON export keeps its text in data; export again with the JSON format.",
            ref,
        )
        return None
    picked = pick_text(data, ref, ctx)
    if picked is None:
        return None
    field, text = picked
    annotations = _human_annotations(item, text, ref, ctx) + _predictions(item, text, ref, ctx)
    meta = {k: v for k, v in data.items() if k != field}
    return ParsedTask(text=text, task_id=task_id, meta=meta, annotations=tuple(annotations), position=position)


# ---------------------------------------------------------------- JSON-MIN export


def _min_kind(key: str, value: Any, ctx: ParseContext) -> str:
    """How a JSON-MIN field is read: ``spans``, ``choices``, ``ignored`` or ``meta``."""
    cfg = ctx.config
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if (cfg is not None and key in cfg.span_from_names) or any("labels" in v for v in value):
            return "spans"
        if all("start" in v for v in value):
            return "ignored"  # paragraph, hypertext or other regions that are not plain-text spans
    if cfg is not None and key in cfg.choice_from_names:
        return "choices"
    if isinstance(value, dict) and ("choices" in value or "taxonomy" in value):
        return "choices"
    return "meta"


def _min_choices(value: Any) -> Any:
    if isinstance(value, dict):
        return value["choices"] if "choices" in value else taxonomy_leaves(value.get("taxonomy"))
    return value


def _min_regions(row: dict[str, Any], field: str, text: str, ref: str, ctx: ParseContext) -> tuple[Regions, dict]:
    out, meta = Regions(), {}
    for key, value in row.items():
        kind = "text" if key == field else _min_kind(key, value, ctx)
        if kind == "spans":
            for region in value:
                span_value(region if isinstance(region, dict) else {}, (key, None), text, ref, ctx, out)
        elif kind == "choices":
            add_choices(_min_choices(value), key, ref, ctx, out)
        elif kind == "ignored":
            ctx.ignored[f"{key} regions"] += len(value)
        elif kind == "meta" and key not in MIN_ANNOTATION_KEYS:
            meta[key] = value
            if isinstance(value, str) and key not in MIN_META_KEYS:
                ctx.string_meta.add(key)
    return out, meta


def task_from_min(row: dict[str, Any], position: int, ctx: ParseContext) -> ParsedTask | None:
    """One row of a JSON-MIN export: the data fields and one human annotation flattened into a dict."""
    task_id = int_id(row.get("id"))
    ref = task_ref(task_id, position)
    picked = pick_text(row, ref, ctx, reserved=MIN_ANNOTATION_KEYS + MIN_META_KEYS)
    if picked is None:
        return None
    field, text = picked
    found, meta = _min_regions(row, field, text, ref, ctx)
    labelled = bool(found.spans or found.choices) or any(k in row for k in ("annotator", "annotation_id"))
    annotations: tuple[Annotation, ...] = ()
    if labelled:
        where = f"annotation {row['annotation_id']}" if row.get("annotation_id") is not None else "the annotation"
        regions = finish(found, text, ref, ctx, where)
        annotations = (
            Annotation(
                source="human",
                spans=tuple(regions.spans),
                choices=tuple(regions.choices),
                external_id=text_or_none(row.get("annotation_id")),
                author=author_of(row.get("annotator")),
                created_at=text_or_none(row.get("created_at")),
                updated_at=text_or_none(row.get("updated_at")),
            ),
        )
    if task_id is not None:
        meta.pop("id", None)
    return ParsedTask(text=text, task_id=task_id, meta=meta, annotations=annotations, position=position)


# ---------------------------------------------------------------- streaming


def _json_items(path: Path, top: str, report: ParseReport) -> Iterator[Any]:
    """Raw items of a JSON export (one for a single-task object), turning syntax errors into ReportLensError."""
    with path.open("rb") as raw:
        reader = Utf8Reader(raw, path)
        items = JSON_BACKEND.items(reader, "item" if top == "[" else "", use_float=True)
        try:
            for item in items:
                report.bytes_read = reader.offset
                yield item
        except ijson.JSONError as exc:
            raise syntax_error(path, exc, report.tasks_seen) from exc


def _check_top(path: Path, top: str, item: Any, position: int, ctx: ParseContext) -> bool:
    """Raise for a file that is not a task list; record and skip a stray non-task item inside a list."""
    if top == "{":
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            keys = short_list(sorted(item)) if isinstance(item, dict) else ""
            raise shape_error(path, f"one object with keys ({keys}) but no 'data'")
        ctx.report.note("info", "single_task", f"{path.name} holds one task object, not a list; read it as one task.")
        return True
    if isinstance(item, dict):
        return True
    if position == 0:
        raise shape_error(path, f"a list whose first item is {value_kind(item)} ({str(item)[:40]!r})")
    _error(
        ctx,
        "not_a_task",
        f"Item #{position + 1}: is {value_kind(item)} ({str(item)[:40]!r}), not a task "
        "object; skipped. Remove it from the file.",
        f"Item #{position + 1}",
    )
    return False


def _iter_json(path: Path, top: str, fmt: str, ctx: ParseContext) -> Iterator[ParsedTask]:
    read = task_from_min if fmt == "json-min" else task_from_json
    for position, item in enumerate(_json_items(path, top, ctx.report)):
        ctx.report.tasks_seen += 1
        task = read(item, position, ctx) if _check_top(path, top, item, position, ctx) else None
        if task is None:
            ctx.report.tasks_skipped += 1
        else:
            yield task


def _close(ctx: ParseContext) -> None:
    """Issues that summarise the whole file, and the final config."""
    report = ctx.report
    if ctx.ignored:
        counts = ", ".join(f"{k} ×{v}" for k, v in sorted(ctx.ignored.items()))
        report.note(
            "info",
            "ignored_results",
            f"Ignored {sum(ctx.ignored.values())} results that ReportLens does not import ({counts}). Only "
            "<Labels> regions on the report text (spans) and <Choices>/<Taxonomy> (document labels) are read.",
        )
    if ctx.prediction_ids:
        report.note(
            "info",
            "prediction_ids_skipped",
            f"{ctx.prediction_ids} predictions are listed only by id (as the Label Studio API export writes "
            "them), so they were skipped; export from the Label Studio UI to import model predictions.",
        )
    if ctx.string_meta and ctx.config is None and report.format == "json-min":
        report.note(
            "info",
            "json_min_strings",
            f"JSON-MIN without a labeling config: string fields ({short_list(sorted(ctx.string_meta))}) were "
            "kept as task metadata, because a single choice looks like any other text; pass --config to "
            "read <Choices> fields as document labels.",
        )
    report.config = ctx.config if ctx.config is not None else ctx.tally.config()
    if ctx.config is None:
        cfg = report.config
        report.note(
            "info",
            "inferred_config",
            f"No labeling config given: inferred {len(cfg.span_labels)} span labels "
            f"({short_list(cfg.span_labels)}) and {len(cfg.choice_labels)} choice labels "
            f"({short_list(cfg.choice_labels)}) from the results; pass --config to check labels.",
        )
    if report.tasks_seen == 0:
        report.note("warning", "no_tasks", "The export holds no tasks; check that the right project was exported.")


def _finishing(tasks: Iterator[ParsedTask], ctx: ParseContext) -> Iterator[ParsedTask]:
    yield from tasks
    _close(ctx)


def iter_tasks(
    path: Any, config: LabelConfig | None = None, report: ParseReport | None = None, fmt: str | None = None
) -> Iterator[ParsedTask]:
    """Stream the usable tasks of an export file; problems go to ``report`` (pass one in to read them).

    The file, its encoding and its format are checked now (raising :class:`ReportLensError`); each task is
    read when the iterator reaches it. ``report.config`` is set once the iterator is exhausted.
    """
    p = check_path(path)
    top, _ = first_char(p)
    chosen = check_format(fmt) if fmt else detect_format(p)
    report = report if report is not None else ParseReport()
    report.format = chosen
    ctx = ParseContext(config, report)
    if chosen == "conll":
        return _finishing(iter_conll(p, ctx), ctx)
    if top not in "[{":
        raise shape_error(p, char_kind(top))
    return _finishing(_iter_json(p, top, chosen, ctx), ctx)


def parse_export(path: Any, config: LabelConfig | None = None) -> tuple[list[ParsedTask], ParseReport]:
    """All tasks of a (small) export and the report; use :func:`iter_tasks` for large files."""
    report = ParseReport()
    tasks = list(iter_tasks(path, config, report))
    return tasks, report
