"""The synthetic demo export (core/demo.py): deterministic, exact spans, Label Studio shape."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from core.demo import (
    DEMO_LABEL_CONFIG,
    DEMO_LABELS,
    DEMO_PROJECT_NAME,
    generate_demo_export,
    write_demo_export,
)


@pytest.fixture(scope="module")
def export() -> list[dict]:
    return generate_demo_export()


def regions(task: dict) -> list[dict]:
    return [r for a in task["annotations"] for r in a["result"]]


def test_same_seed_same_export_other_seed_other_export() -> None:
    assert generate_demo_export(50, seed=3) == generate_demo_export(50, seed=3)
    assert json.dumps(generate_demo_export(50, seed=3)) != json.dumps(generate_demo_export(50, seed=4))


@pytest.mark.parametrize("n", [0, 1, 7, 300])
def test_n_is_respected_and_ids_are_unique(n: int) -> None:
    tasks = generate_demo_export(n)
    assert len(tasks) == n
    assert [t["id"] for t in tasks] == list(range(1, n + 1))
    ann_ids = [a["id"] for t in tasks for a in t["annotations"]]
    region_ids = [r["id"] for t in tasks for r in regions(t)]
    assert len(set(ann_ids)) == len(ann_ids) and len(set(region_ids)) == len(region_ids)


def test_every_span_is_exact_and_spans_never_overlap(export: list[dict]) -> None:
    for task in export:
        text = task["data"]["text"]
        spans = []
        for r in regions(task):
            v = r["value"]
            assert (r["from_name"], r["to_name"], r["type"]) == ("label", "text", "labels")
            assert 0 <= v["start"] < v["end"] <= len(text)
            assert text[v["start"] : v["end"]] == v["text"], f"task {task['id']}: {v}"
            assert v["text"] == v["text"].strip() and len(v["labels"]) == 1
            spans.append((v["start"], v["end"]))
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)), task["id"]


def test_all_labels_appear_and_only_those(export: list[dict]) -> None:
    counts = Counter(r["value"]["labels"][0] for t in export for r in regions(t))
    assert set(counts) == set(DEMO_LABELS)
    assert min(counts.values()) >= 30


def test_about_forty_percent_unlabeled(export: list[dict]) -> None:
    unlabeled = sum(1 for t in export if not t["annotations"])
    assert unlabeled == 120  # exactly round(0.4 * 300)
    for n in (10, 37, 101):
        tasks = generate_demo_export(n, seed=n)
        assert sum(1 for t in tasks if not t["annotations"]) == round(0.4 * n)
    labeled = [t for t in export if t["annotations"]]
    assert all(len(t["annotations"]) == 1 and regions(t) for t in labeled)


def test_label_studio_shape(export: list[dict]) -> None:
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
    assert {t["data"]["modality"] for t in export} == {"ECG", "CXR", "CT"}
    for task in export:
        assert task["predictions"] == [] and task["total_annotations"] == len(task["annotations"])
        assert stamp.fullmatch(task["created_at"]) and stamp.fullmatch(task["updated_at"])
        for a in task["annotations"]:
            assert a["completed_by"] == 1 and a["was_cancelled"] is False and a["ground_truth"] is False
            assert stamp.fullmatch(a["created_at"]) and a["created_at"] <= a["updated_at"]
            assert a["task"] == task["id"]


def test_reports_read_like_reports(export: list[dict]) -> None:
    ecg = [t["data"]["text"] for t in export if t["data"]["modality"] == "ECG"]
    chest = [t["data"]["text"] for t in export if t["data"]["modality"] != "ECG"]
    assert all("FINDINGS: " in t and "\nIMPRESSION:" in t for t in chest)
    assert any(re.search(r"\b\d+ bpm\b", t) for t in ecg) and any("QTc " in t for t in ecg)
    assert not any("  " in t or t != t.strip() for t in ecg + chest)
    negated = [r["value"]["text"] for t in export for r in regions(t) if r["value"]["labels"] == ["NEGATION"]]
    assert set(negated) <= {"No", "no", "No evidence of", "without"}


def test_label_config_lists_the_labels() -> None:
    root = ET.fromstring(DEMO_LABEL_CONFIG)
    labels = root.find("Labels")
    assert labels is not None and labels.get("name") == "label" and labels.get("toName") == "text"
    assert tuple(lab.get("value") for lab in labels.findall("Label")) == DEMO_LABELS
    text = root.find("Text")
    assert text is not None and text.get("name") == "text" and text.get("value") == "$text"
    assert DEMO_PROJECT_NAME == "Demo: ECG & radiology"


def test_write_demo_export(tmp_path: Path) -> None:
    path = write_demo_export(tmp_path / "demo.json", n=20, seed=1)
    assert json.loads(path.read_text(encoding="utf-8")) == generate_demo_export(20, seed=1)


def test_negative_n_is_refused() -> None:
    with pytest.raises(ValueError, match="n must be"):
        generate_demo_export(-1)
