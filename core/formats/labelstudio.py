"""Label Studio full JSON export: :func:`sniff`, :func:`read` (streamed, task by task) and :func:`write`, paired.

``read`` turns tasks into :class:`~core.types.ParsedTask` objects; problems in the data become
:class:`~core.types.Issue` entries in the :class:`~core.formats.report.ParseReport` (what, where, how to fix), and
only a file that cannot be read at all raises :class:`~core.types.ReportLensError`. ``write`` is its inverse: the
import file Label Studio reads (tasks with ``data``, human ``annotations`` and model ``predictions``), used by
``cli.py predict`` and the Label Studio push; ``read(write(tasks))`` gives the tasks back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from core.errors import IssueCode
from core.formats.jsonstream import JSON_SCALAR_STARTS, first_item, is_one_json_value, iter_json, value_kind
from core.formats.labelconfig import LabelConfig, short_list
from core.formats.lsresults import (
    ParseContext,
    human_annotation,
    model_annotation,
)
from core.formats.report import ParseReport, check_path, first_char
from core.identity import read_task_id
from core.spancheck import as_offset
from core.types import Annotation, Issue, ParsedTask, ReportLensError

NAME = "json"
TASK_KEYS = ("data", "annotations", "predictions", "completions")
_REFERENCE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|/|s3:|gs:)\S*$")


def int_id(value: Any) -> int | None:
    """An id as int when it is one (``12``, ``12.0``, ``"12"``); ``None`` otherwise (task ids: :func:`task_id_of`)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return as_offset(value)


def task_id_of(item: dict[str, Any], position: int, ctx: ParseContext) -> tuple[int | None, bool]:
    """``(task id or None, usable)`` by the rules of :func:`core.identity.read_task_id`; an id that is refused is
    reported (``invalid_task_id``) and the task is not usable."""
    task_id, problem = read_task_id(item.get("id"))
    if problem is not None:
        _error(ctx, IssueCode.INVALID_TASK_ID, task_ref(None, position), value=repr(item.get("id"))[:40],
               problem=problem)
    return task_id, problem is None


def ls_project_of(item: dict[str, Any]) -> int | None:
    """The Label Studio project a full export's task is in (``project``), when it says so with a valid id."""
    return read_task_id(item.get("project"))[0]


def task_ref(task_id: int | None, position: int) -> str:
    return ParsedTask(text="", task_id=task_id, position=position).ref


def _error(ctx: ParseContext, code: IssueCode, ref: str, **fields: object) -> None:
    ctx.report.add(Issue.of(code, task=ref, **fields))


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
    ctx.report.note(IssueCode.TEXT_FIELD_GUESSED, task=ref, field=strings[0])
    return strings[0]


def pick_text(
    data: dict[str, Any], ref: str, ctx: ParseContext, reserved: tuple[str, ...] = ()
) -> tuple[str, str] | None:
    """The (field, text) of a task, or ``None`` after recording why the task is skipped."""
    field = ctx.text_field if ctx.text_field in data else _guess_text_field(data, ref, ctx, reserved)
    if field is None:
        problem = f"the task data has no {ctx.text_field!r} field (fields: {short_list(sorted(data))})"
        _error(ctx, IssueCode.MISSING_TEXT_FIELD, ref, problem=problem)
        return None
    text = data[field]
    if not isinstance(text, str):
        _error(ctx, IssueCode.MISSING_TEXT_FIELD, ref, problem=f"data[{field!r}] is {value_kind(text)}, not text")
        return None
    if not text.strip():
        _error(ctx, IssueCode.EMPTY_TEXT, ref, field=field)
        return None
    return field, text


# ---------------------------------------------------------------- full JSON export


def _human_annotations(item: dict[str, Any], text: str, ref: str, ctx: ParseContext) -> list[Annotation]:
    anns = item["annotations"] if "annotations" in item else item.get("completions")
    if anns is not None and not isinstance(anns, list):
        _error(ctx, IssueCode.BAD_ANNOTATION, ref, what="'annotations'", kind=value_kind(anns), expected="a list")
        return []
    out = []
    for i, ann in enumerate(anns or []):
        if isinstance(ann, dict):
            out.append(human_annotation(ann, i, text, ref, ctx))
        else:
            _error(ctx, IssueCode.BAD_ANNOTATION, ref, what=f"annotation #{i + 1}", kind=value_kind(ann),
                   expected="an object")
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
            _error(ctx, IssueCode.BAD_ANNOTATION, ref, what=f"prediction #{i + 1}", kind=value_kind(pred),
                   expected="an object")
    return out


def task_from_json(item: dict[str, Any], position: int, ctx: ParseContext) -> ParsedTask | None:
    """One task of a full JSON export, or ``None`` (with an error issue) when it cannot be used."""
    task_id, usable = task_id_of(item, position, ctx)
    if not usable:
        return None
    ref = task_ref(task_id, position)
    data = item.get("data")
    if not isinstance(data, dict):
        _error(ctx, IssueCode.MISSING_DATA, ref, keys=short_list(sorted(item)))
        return None
    picked = pick_text(data, ref, ctx)
    if picked is None:
        return None
    field, text = picked
    annotations = _human_annotations(item, text, ref, ctx) + _predictions(item, text, ref, ctx)
    meta = {k: v for k, v in data.items() if k != field}
    return ParsedTask(text=text, task_id=task_id, meta=meta, annotations=tuple(annotations), position=position,
                      ls_project=ls_project_of(item))




# ---------------------------------------------------------------- sniff and read


def is_min_row(item: Any) -> bool:
    """A JSON-MIN row: an object without any of the keys of a full JSON task."""
    return isinstance(item, dict) and not any(k in item for k in TASK_KEYS)


def sniff(path: Path) -> bool:
    """A JSON file that is not JSON-MIN: a task list, one task object, or any other single JSON value (a string,
    a number, ``null``...), which :func:`read` then refuses as "not Label Studio tasks"; never another format."""
    if not path.is_file():
        return False
    char, _ = first_char(path)
    if char == "{":
        return True
    if char == "[":
        return not is_min_row(first_item(path))
    return char in JSON_SCALAR_STARTS and is_one_json_value(path)


def read(path: Path, config: LabelConfig | None, report: ParseReport) -> Iterator[ParsedTask]:
    """Stream the usable tasks; the file's shape is checked now, each task when the iterator reaches it."""
    top, _ = first_char(check_path(path))
    return iter_json(path, top, task_from_json, ParseContext(config, report))


# ---------------------------------------------------------------- write (the import file Label Studio reads)


def span_targets(config: LabelConfig | None) -> tuple[str, str, str]:
    """(text field, from_name, to_name) of span results under a label config (or the defaults without one)."""
    text_field = config.text_field if config else "text"
    from_name = config.span_from_names[0] if config and config.span_from_names else "label"
    to_name = config.to_name if config and config.to_name else text_field
    return text_field, from_name, to_name


def choice_targets(config: LabelConfig | None) -> tuple[str, str, str]:
    """(text field, from_name, to_name) of document-level ``choices`` results."""
    text_field, _, to_name = span_targets(config)
    from_name = config.choice_from_names[0] if config and config.choice_from_names else "choice"
    return text_field, from_name, to_name


def task_data(meta: dict[str, Any] | None) -> dict[str, Any]:
    """The simple (text, number, boolean) metadata fields worth sending to Label Studio as task data."""
    return {k: v for k, v in (meta or {}).items() if isinstance(k, str) and not k.startswith("_")
            and isinstance(v, str | int | float | bool)}


def _score(value: float | None) -> dict[str, float]:
    return {} if value is None else {"score": round(float(value), 4)}


def span_results(text: str, spans: Iterable[tuple[int, int, str, float | None]], from_name: str, to_name: str,
                 id_prefix: str = "rl") -> list[dict[str, Any]]:
    """``labels`` results for ``(start, end, label, score)`` spans; the score only where there is one."""
    return [{"id": f"{id_prefix}-{k}", "from_name": from_name, "to_name": to_name, "type": "labels",
             "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}, **_score(score)}
            for k, (start, end, label, score) in enumerate(spans)]


def choice_results(choices: Iterable[str], from_name: str, to_name: str, id_prefix: str = "rl",
                   score: float | None = None) -> list[dict[str, Any]]:
    """One ``choices`` result holding the document labels (none when there are no choices)."""
    chosen = list(choices)
    if not chosen:
        return []
    return [{"id": f"{id_prefix}-c", "from_name": from_name, "to_name": to_name, "type": "choices",
             "value": {"choices": chosen}, **_score(score)}]


def prediction_task(text: str, results: list[dict[str, Any]], doc_score: float | None, model_version: str, *,
                    text_field: str, data: dict[str, Any] | None = None, task_id: int | None = None) -> dict[str, Any]:
    """One import task with one prediction (``model_version``, document ``score``, its ``results``)."""
    prediction: dict[str, Any] = {"model_version": model_version, "result": results, **_score(doc_score)}
    fields = {k: v for k, v in (data or {}).items() if k != text_field}
    row: dict[str, Any] = {"data": {text_field: text, **fields}, "predictions": [prediction]}
    if task_id is not None:
        row["id"] = task_id
    return row


def span_prediction_task(text: str, spans: Any, doc_score: float | None, model_version: str, *, text_field: str,
                         from_name: str, to_name: str, data: dict[str, Any] | None = None,
                         task_id: int | None = None, id_prefix: str = "rl") -> dict[str, Any]:
    """An import task with a span prediction; ``spans`` are ``(start, end, label, score)``."""
    results = span_results(text, spans, from_name, to_name, id_prefix)
    return prediction_task(text, results, doc_score, model_version, text_field=text_field, data=data,
                           task_id=task_id)


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v is not False}


def _annotation(a: Annotation, text: str, config: LabelConfig | None, id_prefix: str) -> dict[str, Any]:
    _, from_name, to_name = span_targets(config)
    _, choice_from, _ = choice_targets(config)
    scores = a.span_scores if len(a.span_scores) == len(a.spans) else (None,) * len(a.spans)
    spans = [(s.start, s.end, s.label, sc) for s, sc in zip(a.spans, scores, strict=True)]
    result = (span_results(text, spans, from_name, to_name, id_prefix)
              + choice_results(a.choices, choice_from, to_name, id_prefix))
    if a.source == "model":
        return {"result": result, **_present(id=a.external_id, model_version=a.model_version, score=a.score,
                                             created_at=a.created_at, updated_at=a.updated_at)}
    return {"result": result, **_present(id=a.external_id, completed_by=a.author, created_at=a.created_at,
                                         updated_at=a.updated_at, ground_truth=a.ground_truth,
                                         was_cancelled=a.cancelled)}


def write(tasks: Iterable[ParsedTask], config: LabelConfig | None = None) -> list[dict[str, Any]]:
    """Tasks as a Label Studio full JSON list: ``data`` (the text under the config's field, and the task's meta),
    ``annotations`` (every non-model annotation) and ``predictions`` (model annotations, with per-span scores).

    The inverse of :func:`read`: reading the written file gives back the text, id, meta, spans, choices and the
    annotations' ids, authors, dates, flags, versions and scores (rule or review annotations come back as human
    ones, the only other kind Label Studio has)."""
    text_field = span_targets(config)[0]
    rows = []
    for n, task in enumerate(tasks):
        if text_field in task.meta:
            raise ReportLensError(f"{task.ref}: its metadata has a field {text_field!r}, the name of the text field; "
                                  "rename that field before writing the task for Label Studio.")
        written = [(a.source == "model", _annotation(a, task.text, config, f"rl-{n}-{k}"))
                   for k, a in enumerate(task.annotations)]
        row: dict[str, Any] = {"data": {text_field: task.text, **task.meta},
                               "annotations": [w for is_model, w in written if not is_model],
                               "predictions": [w for is_model, w in written if is_model]}
        if task.task_id is not None:
            row["id"] = task.task_id
        rows.append(row)
    return rows


def label_config_xml(config: LabelConfig | None, labels: tuple[str, ...] = ()) -> str:
    """A Label Studio labeling config for span labelling that matches ``config`` (names and labels)."""
    text_field, from_name, to_name = span_targets(config)
    span_labels = sorted(set(config.span_labels if config else ()) | set(labels))
    if not span_labels:
        raise ReportLensError("The project has no span labels yet; import a labelled export (or train a model) "
                              "before creating a Label Studio project from it.")
    items = "".join(f"\n    <Label value={quoteattr(lab)}/>" for lab in span_labels)
    return (f"<View>\n  <Labels name={quoteattr(from_name)} toName={quoteattr(to_name)}>{items}\n  </Labels>\n"
            f"  <Text name={quoteattr(to_name)} value={quoteattr('$' + text_field)}/>\n</View>")
