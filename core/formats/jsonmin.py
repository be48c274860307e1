"""Label Studio JSON-MIN export: one flat row per task (the data fields and one human annotation's regions and
choices side by side). :func:`sniff` and :func:`read`; ReportLens writes full JSON, never JSON-MIN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.formats.jsonstream import first_item, iter_json
from core.formats.labelconfig import LabelConfig
from core.formats.labelstudio import is_min_row, pick_text, task_id_of, task_ref
from core.formats.lsresults import (
    ParseContext,
    Regions,
    add_choices,
    author_of,
    finish,
    span_value,
    taxonomy_leaves,
    text_or_none,
)
from core.formats.report import ParseReport, check_path, first_char
from core.types import Annotation, ParsedTask

NAME = "json-min"
MIN_ANNOTATION_KEYS = ("annotator", "annotation_id", "created_at", "updated_at")
MIN_META_KEYS = ("id", "lead_time", "agreement")



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
    task_id, usable = task_id_of(row, position, ctx)
    if not usable:
        return None
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




def sniff(path: Path) -> bool:
    """A JSON list whose first item is a flat row (no ``data``, ``annotations``, ``predictions`` keys)."""
    return path.is_file() and first_char(path)[0] == "[" and is_min_row(first_item(path))


def read(path: Path, config: LabelConfig | None, report: ParseReport) -> Iterator[ParsedTask]:
    """Stream the usable rows as tasks with (at most) one human annotation each."""
    top, _ = first_char(check_path(path))
    return iter_json(path, top, task_from_min, ParseContext(config, report))
