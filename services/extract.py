"""The structured result of a report: rules (and the project's model) -> entities -> JSON / CSV; rule pre-annotation.

Used by the Review page, ``cli.py extract`` and the project CSV download:

- :func:`structured_result` (pure): entities grouped by label with normalised values and negation flags.
- :func:`extract_text`: a free text, rules alone or merged with a project's active model.
- :func:`document_entities`: a stored document's entities, the model version's (stored ``Prediction`` rows first,
  else predicted now) merged with the rules (:mod:`core.hybrid`), rule labels mapped to the model's/project's labels
  (:func:`core.rules.labels.label_map_for`, overridable by ``settings["rule_label_map"]`` of the project).
- :func:`project_csv`: one row per entity of every document.
- :func:`preannotate_with_rules`: rule output stored as ``source="rule"`` annotations (never training labels,
  :mod:`core.policy`).

Report text is never logged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from core.auth import Permission
from core.confidence import document_confidence
from core.hybrid import DEFAULT_POLICY, merge_entities
from core.limits import MAX_EXTRACT_CHARS
from core.rules import annotate, extract_ecg, label_map_for, map_labels, normalise_entity
from core.rules.holter import link_context
from core.rules.labels import LabelMap
from core.types import Entity, ReportLensError
from db.extraction import (
    DocText,
    project_document_chunks,
    store_rule_annotations,
    stored_predictions,
)
from db.model_versions import active_model_version, get_model_version
from db.records import ModelVersionInfo, ProjectInfo
from db.repository import get_document, require_project
from db.scores import save_predictions
from services.auth import open_to_all, requires
from services.files import csv_cell

RESULT_SCHEMA = "reportlens.structured_result/1"
RULES_AUTHOR = "reportlens-rules"
RULES_VERSION = "rules-ecg-2"  # 2: Holter events, counts, times, RR intervals, P-R-T axes, QTc formulas
CSV_COLUMNS = ("document_id", "task_id", "label", "text", "start", "end", "value", "unit", "negated", "uncertain",
               "source", "score", "measure", "concept", "scp_code", "conflict")
PREDICT_BATCH = 32
_ITEM_KEYS = ("measure", "range", "concept", "scp_code", "axis", "normal", "converted_from", "implausible",
              "conflict", "conflict_kind", "agreement", "rule_label", "stat", "time", "formula", "wave", "event",
              "count", "of", "duration_ms", "longest_ms", "longest_run_beats")
_ECTOPY = {"PAC": ("atrial", "count"), "PVC": ("ventricular", "count"), "atrial_couplet": ("atrial", "couplets"),
           "ventricular_couplet": ("ventricular", "couplets"), "atrial_run": ("atrial", "runs"),
           "ventricular_run": ("ventricular", "runs")}


# ---------------------------------------------------------------- the structured result (pure)


def _item(text: str, e: Entity) -> dict[str, Any]:
    a = e.attrs
    item: dict[str, Any] = {"text": text[e.start : e.end], "start": e.start, "end": e.end,
                            "score": round(float(e.score), 4), "source": e.source, "value": a.get("value"),
                            "unit": a.get("unit"), "negated": bool(a.get("negated", False)),
                            "uncertain": bool(a.get("uncertain", False))}
    item.update({k: a[k] for k in _ITEM_KEYS if k in a})
    return item


def _holter(items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """The Holter part of the summary: total beats, mean/min/max heart rate with the time each occurred, premature
    beats (atrial, ventricular: count, couplets, runs, the longest run and when), the longest RR interval and the
    pauses; ``None`` when the report says none of it. The first mention of each wins."""
    rates: dict[str, dict[str, Any]] = {}
    ectopy: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {}
    absent: list[str] = []
    for _, it in items:
        measure, event = it.get("measure"), it.get("event")
        if it.get("implausible"):
            continue
        if measure == "HR" and it.get("stat") and it["stat"] not in rates and it.get("value") is not None:
            rates[it["stat"]] = {"value": it["value"], "unit": "bpm",
                                 **({"time": it["time"]} if it.get("time") else {})}
        elif measure == "RR" and it.get("stat") == "max" and "longest_rr" not in out:
            out["longest_rr"] = {"ms": it["value"], **({"time": it["time"]} if it.get("time") else {})}
        elif measure == "count" and it.get("of") == "total_beats" and "total_beats" not in out:
            out["total_beats"] = it["value"]
        elif event and (it["negated"] or it.get("count") is not None or event == "pause"):
            if it["negated"]:
                absent.append(event)
                continue
            if event == "pause":
                pause = out.setdefault("pauses", {})
                for key, name in (("count", "count"), ("longest_ms", "longest_ms"), ("duration_ms", "longest_ms"),
                                  ("time", "time")):
                    if it.get(key) is not None:
                        pause.setdefault(name, it[key])
                continue
            kind, field = _ECTOPY[event]
            got = ectopy.setdefault(kind, {})
            got.setdefault(field, it["count"])
            if field == "runs":
                for key in ("longest_run_beats", "duration_ms", "time"):
                    if it.get(key) is not None:
                        got.setdefault(f"run_{key}" if key != "longest_run_beats" else key, it[key])
    if rates:
        out["heart_rate"] = {k: rates[k] for k in ("mean", "min", "max") if k in rates}
    if ectopy:
        out["premature_beats"] = ectopy
    if absent:
        out["absent"] = sorted(set(absent))
    return out or None


def _summary(items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    heart_rate = None
    intervals: dict[str, int] = {}
    axis: dict[str, Any] | None = None
    axes: dict[str, int] = {}
    qtc_formula = None
    present, negated, uncertain = [], [], []
    for label, it in items:
        measure = it.get("measure")
        if measure and not it.get("implausible"):
            if measure == "HR" and heart_rate is None and it.get("stat") in (None, "mean"):
                heart_rate = {"value": it["value"], "range": it.get("range"), "unit": "bpm"}
            elif measure in ("PR", "QRS", "QT", "QTc", "RR") and measure not in intervals and not it.get("stat"):
                intervals[measure] = it["value"]
                if measure == "QTc" and it.get("formula"):
                    qtc_formula = it["formula"]
            elif measure == "axis" and it.get("wave"):
                axes.setdefault(it["wave"], it["value"])
            elif measure == "axis" and axis is None:
                axis = {"value": it["value"], "unit": "deg"}
            continue
        if it.get("event") and it.get("count") is not None:
            continue  # a counted event belongs to the Holter part
        if label in ("NEGATION", "UNCERTAINTY") or it.get("value") is not None:
            continue
        if label == "AXIS" and axis is None and it.get("axis"):
            axis = {"code": it["axis"], "text": it["text"]}
        brief = {"label": label, "text": it["text"], **({"scp_code": it["scp_code"]} if "scp_code" in it else {})}
        (negated if it["negated"] else uncertain if it["uncertain"] else present).append(brief)
    if axis is None and "QRS" in axes:
        axis = {"value": axes["QRS"], "unit": "deg"}
    return {"heart_rate": heart_rate, "intervals_ms": intervals, "axis": axis, "axes": axes or None,
            "qtc_formula": qtc_formula, "holter": _holter(items), "present": present, "negated": negated,
            "uncertain": uncertain}


@open_to_all
def structured_result(text: str, entities: Sequence[Entity]) -> dict[str, Any]:
    """The report's entities grouped by label (labels sorted, entities by offset), JSON-serialisable.

    Each entity: ``text, start, end, score, source, value, unit, negated, uncertain`` and, where known, ``measure``,
    ``range`` (a heart-rate range, ``value`` is then null), ``concept``, ``scp_code``, ``axis``, ``conflict`` ...
    Values are normalised (heart rate in bpm, intervals in ms, axis in degrees), also for model entities (their text
    is read by the rules); negation/uncertainty is computed over all entities (:mod:`core.rules.negation`).
    ``summary`` gives the heart rate, intervals (``RR`` too), axis, P-R-T ``axes``, the ``qtc_formula``, the
    ``holter`` summary (:func:`_holter`; ``None`` for a 12-lead report) and the statements present / negated /
    uncertain. Context (which rate is the minimum, when it occurred, an event's count) is read by
    :func:`core.rules.holter.link_context` over all entities, the model's included.
    """
    if not isinstance(text, str):
        raise ReportLensError(f"structured_result needs the report text as a string, got {type(text).__name__}.")
    for e in entities:
        if e.end > len(text):
            raise ReportLensError(f"Entity [{e.start}, {e.end}) {e.label!r} lies outside the text (length "
                                  f"{len(text)}); the entities belong to another text or version of it.")
    ordered = sorted(entities, key=lambda e: (e.start, e.end, e.label))
    ordered = link_context(text, annotate(text, [normalise_entity(text, e) for e in ordered]))
    grouped: dict[str, list[dict[str, Any]]] = {}
    flat = []
    for e in ordered:
        it = _item(text, e)
        grouped.setdefault(e.label, []).append(it)
        flat.append((e.label, it))
    return {"schema": RESULT_SCHEMA, "text_length": len(text), "n_entities": len(ordered),
            "entities": {label: grouped[label] for label in sorted(grouped)}, "summary": _summary(flat)}


# ---------------------------------------------------------------- label space and model predictions


def _label_map(project: ProjectInfo | None, version: ModelVersionInfo | None,
               keep_unmapped: bool = True) -> tuple[LabelMap, bool]:
    """The rule -> project label mapping (into the model's labels when there is a model), and whether negation cues
    become entities (only where that maps them to a label of the project, like the demo's NEGATION)."""
    labels: tuple[str, ...] = ()
    if version is not None:
        labels = tuple((version.label_schema or {}).get("labels") or ())
    if not labels and project is not None:
        labels = project.labels
    overrides = (project.settings or {}).get("rule_label_map") if project is not None else None
    mapping = label_map_for(labels, overrides, keep_unmapped=keep_unmapped)
    probe = map_labels([Entity(0, 1, "NEGATION", 1.0, "rule", {})], mapping)
    return mapping, bool(labels) and bool(probe) and probe[0].label in labels


def _rule_entities(text: str, mapping: LabelMap, cues: bool) -> list[Entity]:
    return map_labels(extract_ecg(text, include_cues=cues), mapping)


def _load_model(version: ModelVersionInfo) -> Any:
    from services.models import load_version  # torch, or the ONNX export under --runtime onnx

    return load_version(version)


def _predict_entities(engine: Any, version: ModelVersionInfo, docs: list[tuple[Any, str]]) -> list[list[Entity]]:
    """Run the model on documents without a stored prediction and store it, so the next read is a lookup."""
    if not docs:
        return []
    loaded = _load_model(version)
    preds = loaded.predict_detailed(docs, batch_size=PREDICT_BATCH)
    out = [[Entity(sp.start, sp.end, sp.label, float(score), "model", {}) for sp, score in p.spans] for p in preds]
    if engine is not None:
        save_predictions(engine, version.id, {doc_id: (ents, document_confidence(p.probs))
                                              for (doc_id, _), ents, p in zip(docs, out, preds, strict=True)
                                              if isinstance(doc_id, int) and doc_id > 0})
    return out


# ---------------------------------------------------------------- rows (db.extraction)



# ---------------------------------------------------------------- public operations


def _entities_for(engine: Any, project: ProjectInfo, version: ModelVersionInfo | None,
                  docs: list[DocText]) -> dict[int, list[Entity]]:
    mapping, cues = _label_map(project, version)
    model: dict[int, list[Entity]] = {}
    if version is not None:
        model = stored_predictions(engine, version.id, [d.id for d in docs])
        missing = [d for d in docs if d.id not in model]
        for d, ents in zip(missing, _predict_entities(engine, version, [(d.id, d.text) for d in missing]), strict=True):
            model[d.id] = ents
    out = {}
    for d in docs:
        rules = _rule_entities(d.text, mapping, cues)
        fits = [e for e in model.get(d.id, []) if e.end <= len(d.text)]
        merged = merge_entities(fits, rules, DEFAULT_POLICY)
        out[d.id] = link_context(d.text, annotate(d.text, [normalise_entity(d.text, e) for e in merged]))
    return out


@requires(Permission.EXTRACT)
def document_entities(engine: Any, document_id: int, version_id: int | None = None) -> list[Entity]:
    """The document's entities: the model version's (``version_id``, default the project's active one; none when the
    project has no model) merged with the rules; negation flags and normalised values attached."""
    doc = get_document(engine, document_id)
    if doc is None:
        raise ReportLensError(f"No document with id {document_id}; pick one from the Dataset page.")
    version = _version(engine, doc.project_id, version_id)
    project = require_project(engine, doc.project_id)
    return _entities_for(engine, project, version, [DocText(doc.id, doc.ls_task_id, doc.text)])[doc.id]


def _version(engine: Any, project_id: int, version_id: int | None) -> ModelVersionInfo | None:
    if version_id is None:
        return active_model_version(engine, project_id)
    version = get_model_version(engine, version_id)
    if version is None:
        raise ReportLensError(f"No model version with id {version_id}; list them with `cli.py models`.")
    if version.project_id != project_id:
        raise ReportLensError(f"Model version {version_id} belongs to another project; pick one of this project's "
                              "versions.")
    return version


@requires(Permission.EXTRACT)
def extract_text(text: str, engine: Any = None, project: str | None = None,
                 version_id: int | None = None) -> dict[str, Any]:
    """The structured result of ``text``: rules alone (no project, or a project without a model), else the rules
    merged with the project's active model (or version ``version_id`` of it). ``extraction`` says which."""
    if not isinstance(text, str) or not text.strip():
        raise ReportLensError("There is no report text to extract from; pass the text, or --file FILE with the report.")
    if len(text) > MAX_EXTRACT_CHARS.value:
        raise ReportLensError(f"The report has {len(text):,} characters, too long for one extraction; "
                              f"{MAX_EXTRACT_CHARS.hint()}. Split it into reports.")
    info: ProjectInfo | None = None
    version: ModelVersionInfo | None = None
    if project is not None:
        if engine is None:
            from db.engine import make_engine

            engine = make_engine()
        info = require_project(engine, project)
        version = _version(engine, info.id, version_id)
    if info is None:
        entities = extract_ecg(text)
    else:
        entities = _entities_for(engine, info, version, [DocText(0, None, text)])[0]
    result = structured_result(text, entities)
    result["extraction"] = {"project": info.name if info else None,
                            "model_version": version.name if version else None,
                            "model_id": version.id if version else None,
                            "mode": "rules+model" if version else "rules",
                            "merge_policy": str(DEFAULT_POLICY) if version else None, "rules": RULES_VERSION}
    return result


@requires(Permission.EXTRACT, action="entities_exported")
def project_csv(engine: Any, project: int | str) -> str:
    """One CSV row per entity of every document of ``project`` (active model + rules), columns :data:`CSV_COLUMNS`."""
    info = require_project(engine, project)
    version = active_model_version(engine, info.id)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for docs in project_document_chunks(engine, info.id):
        entities = _entities_for(engine, info, version, docs)
        for d in docs:
            for e in entities[d.id]:
                it = _item(d.text, e)
                value = it["value"]
                if value is None and it.get("range"):
                    value = f"{it['range'][0]}-{it['range'][1]}"
                row = [d.id, d.task_id, e.label, it["text"], e.start, e.end, value, it["unit"], it["negated"],
                       it["uncertain"], e.source, it["score"], it.get("measure"), it.get("concept"),
                       it.get("scp_code"), it.get("conflict")]
                w.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


@requires(Permission.EXTRACT, action="rules_preannotated",
          detail=lambda stored: {"documents": stored, "rules": RULES_VERSION})
def preannotate_with_rules(engine: Any, project: int | str) -> int:
    """Store the rules' entities as a ``source="rule"`` annotation of every document that has none yet (labels
    mapped to the project's; unmappable ones left out; documents where the rules find nothing get no annotation).
    Returns how many documents got one. Rule annotations are pre-annotations, never training labels."""
    info = require_project(engine, project)
    version = active_model_version(engine, info.id)
    mapping, cues = _label_map(info, version, keep_unmapped=False)
    stored = 0
    for docs in project_document_chunks(engine, info.id, without_rule_annotation=True):
        batch = [(d, _rule_entities(d.text, mapping, cues)) for d in docs]
        batch = [(d, ents) for d, ents in batch if ents]
        if not batch:
            continue
        stored += store_rule_annotations(engine, [(d.id, ents) for d, ents in batch], RULES_AUTHOR, RULES_VERSION)
    return stored  # the decorator's audit row says how many documents, under the acting person
