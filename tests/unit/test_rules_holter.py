"""Holter summaries and cart statement blocks, English and Chinese: the table of phrasings tested (README,
"Extraction": phrase -> the normalised field of the structured summary and its value), and the merge with a model's
HR / VALUE / TIME / EVENT entities."""

from __future__ import annotations

from typing import Any

import pytest

from core.hybrid import merge_entities
from core.rules import extract_ecg, label_map_for, map_labels
from core.types import Entity
from services.extract import structured_result

# phrase | summary field (dotted path) | normalised value. The README's extraction section shows this table.
PHRASINGS: list[tuple[str, str, Any]] = [
    # Holter, English
    ("Mean heart rate 72 bpm", "holter.heart_rate.mean.value", 72),
    ("Average HR: 68 bpm", "holter.heart_rate.mean.value", 68),
    ("Minimum heart rate 48 bpm at 03:12", "holter.heart_rate.min", {"value": 48, "unit": "bpm", "time": "03:12"}),
    ("Slowest rate 41 bpm (04:05)", "holter.heart_rate.min.time", "04:05"),
    ("Max HR 142 bpm at 2:35 PM", "holter.heart_rate.max", {"value": 142, "unit": "bpm", "time": "14:35"}),
    ("Heart rate: min 48 bpm at 03:12, mean 72 bpm, max 142 bpm at 14:35", "holter.heart_rate.mean.value", 72),
    ("Total beats: 98,562", "holter.total_beats", 98562),
    ("126 PVCs", "holter.premature_beats.ventricular.count", 126),
    ("PVCs: 45", "holter.premature_beats.ventricular.count", 45),
    ("Ventricular ectopic beats 1,204", "holter.premature_beats.ventricular.count", 1204),
    ("Premature atrial contractions: 310", "holter.premature_beats.atrial.count", 310),
    ("3 ventricular couplets", "holter.premature_beats.ventricular.couplets", 3),
    ("2 runs of SVT, longest 8 beats at 14:20", "holter.premature_beats.atrial",
     {"runs": 2, "longest_run_beats": 8, "run_time": "14:20"}),
    ("1 run of NSVT", "holter.premature_beats.ventricular.runs", 1),
    ("Longest pause 2.4 s at 03:45", "holter.pauses", {"longest_ms": 2400, "time": "03:45"}),
    ("Longest RR interval 2,100 ms at 02:10", "holter.longest_rr", {"ms": 2100, "time": "02:10"}),
    ("No PVCs.", "holter.absent", ["PVC"]),
    # Holter, Chinese
    ("平均心率 72 次/分", "holter.heart_rate.mean.value", 72),
    ("平均心室率为80次/分", "holter.heart_rate.mean.value", 80),
    ("最慢心率 48 次/分，发生于 03:12", "holter.heart_rate.min", {"value": 48, "unit": "bpm", "time": "03:12"}),
    ("最低心率48bpm（04:24）", "holter.heart_rate.min.time", "04:24"),
    ("最快心率 142 次/分钟，出现在14:35:20", "holter.heart_rate.max.time", "14:35:20"),
    ("最大心率为166次/分，于 07:15", "holter.heart_rate.max.value", 166),
    ("总心搏数：98562 次", "holter.total_beats", 98562),
    ("24 小时总心搏数为114340 次", "holter.total_beats", 114340),
    ("房性早搏 126 次", "holter.premature_beats.atrial.count", 126),
    ("共发生室性早搏2771次", "holter.premature_beats.ventricular.count", 2771),
    ("室早总数为38次", "holter.premature_beats.ventricular.count", 38),
    ("其中成对房早3对", "holter.premature_beats.atrial.couplets", 3),
    ("短阵房性心动过速 2 阵，最长一阵由 8 个心搏组成，持续 4 秒，发生于 10:21", "holter.premature_beats.atrial",
     {"runs": 2, "longest_run_beats": 8, "run_duration_ms": 4000, "run_time": "10:21"}),
    ("短阵室速1阵（02:03）", "holter.premature_beats.ventricular", {"runs": 1, "run_time": "02:03"}),
    ("最长 RR 间期 2.1 秒，发生于 03:45", "holter.longest_rr", {"ms": 2100, "time": "03:45"}),
    ("最长RR间期：1400ms，出现在07:49", "holter.longest_rr.ms", 1400),
    ("窦性停搏5次，最长3.0秒，出现在21:27", "holter.pauses", {"count": 5, "longest_ms": 3000, "time": "21:27"}),
    ("未见室性早搏。", "holter.absent", ["PVC"]),
    ("未见停搏", "holter.absent", ["pause"]),
    # cart statement blocks, English
    ("Vent. rate 75 BPM", "heart_rate.value", 75),
    ("HR=75bpm", "heart_rate.value", 75),
    ("PR interval 160 ms", "intervals_ms.PR", 160),
    ("PR=0.16s", "intervals_ms.PR", 160),
    ("QRS duration: 0.092 s", "intervals_ms.QRS", 92),
    ("QRSd=92ms", "intervals_ms.QRS", 92),
    ("QT/QTc 380/410 ms", "intervals_ms", {"QT": 380, "QTc": 410}),
    ("QT/QTc: 0.38/0.41 s", "intervals_ms", {"QT": 380, "QTc": 410}),
    ("QTc(Bazett) 412 ms", "qtc_formula", "Bazett"),
    ("QTc (Fridericia) = 405 ms", "intervals_ms.QTc", 405),
    ("QTcF: 405 ms", "qtc_formula", "Fridericia"),
    ("P-R-T axes 60 45 30", "axes", {"P": 60, "QRS": 45, "T": 30}),
    ("P/QRS/T axis: 60/-15/30°", "axes", {"P": 60, "QRS": -15, "T": 30}),
    ("P-R-T axes 60 45 30", "axis.value", 45),
    ("RR=800ms", "intervals_ms.RR", 800),
    # cart statement blocks, Chinese
    ("心室率=75次/分", "heart_rate.value", 75),
    ("心率：75 次/分", "heart_rate.value", 75),
    ("PR间期：160ms", "intervals_ms.PR", 160),
    ("QRS时限 0.09 秒", "intervals_ms.QRS", 90),
    ("QT/QTc：380/410 ms", "intervals_ms", {"QT": 380, "QTc": 410}),
    ("QTc（Bazett）=410 ms", "qtc_formula", "Bazett"),
    ("QTc间期 440ms", "intervals_ms.QTc", 440),
    ("P/QRS/T 电轴 60/45/30°", "axes", {"P": 60, "QRS": 45, "T": 30}),
    ("P-R-T 轴：58/69/12", "axes", {"P": 58, "QRS": 69, "T": 12}),
    ("电轴 +60°", "axis.value", 60),
]


def summary_field(text: str, path: str) -> Any:
    node: Any = structured_result(text, extract_ecg(text))["summary"]
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return ("missing", key)
        node = node[key]
    return node


def test_the_table_has_forty_rows_or_more_in_both_languages():
    zh = [p for p, _, _ in PHRASINGS if any("\u4e00" <= ch <= "\u9fff" for ch in p)]
    assert len(PHRASINGS) >= 40 and len(zh) >= 20 and len(PHRASINGS) - len(zh) >= 20


@pytest.mark.parametrize(("phrase", "path", "expected"), PHRASINGS, ids=[f"{k}" for k in range(len(PHRASINGS))])
def test_phrasing(phrase: str, path: str, expected: Any):
    got = summary_field(phrase, path)
    if isinstance(expected, dict) and isinstance(got, dict):
        assert {k: got.get(k) for k in expected} == expected, got
    else:
        assert got == expected


@pytest.mark.parametrize("text", [
    "Sinus rhythm, heart rate 78 bpm.", "PR 160 ms, QRS 0.09 s, QT/QTc 380/420 ms.", "Normal ECG.",
    "窦性心律，心率78次/分，QRS时限 90 ms。"])
def test_a_twelve_lead_report_has_no_holter_part(text: str):
    assert structured_result(text, extract_ecg(text))["summary"]["holter"] is None


def test_a_premature_beat_without_count_is_a_diagnosis_and_with_one_an_event():
    text = "室性早搏 45 次。诊断：窦性心律，室性早搏。"
    ents = {(text[e.start:e.end], e.start, e.label) for e in extract_ecg(text)}
    assert ("室性早搏", 0, "EVENT") in ents and ("室性早搏", text.rindex("室性早搏"), "FINDING") in ents
    mapped = map_labels(extract_ecg(text), label_map_for(["HR", "VALUE", "TIME", "EVENT", "DIAG"]))
    assert [(text[e.start:e.end], e.label) for e in mapped] == [
        ("室性早搏", "EVENT"), ("45 次", "VALUE"), ("窦性心律", "DIAG"), ("室性早搏", "DIAG")]


def test_times_and_counts_are_never_negated_and_events_are():
    text = "未见室性早搏，最慢心率 50 次/分，发生于 03:00。"
    by_text = {text[e.start:e.end]: e for e in extract_ecg(text)}
    assert by_text["室性早搏"].attrs["negated"] is True
    assert "negated" not in by_text["03:00"].attrs and by_text["50 次/分"].attrs["time"] == "03:00"


def test_a_time_in_the_next_sentence_is_not_linked():
    text = "Max HR 142 bpm. Recording started at 08:30."
    hr = next(e for e in extract_ecg(text) if e.label == "HEART_RATE")
    assert hr.attrs["stat"] == "max" and "time" not in hr.attrs


def test_model_entities_get_the_same_structured_output_as_the_rules():
    """The Chinese demo's model entities alone (no rule run on the text) give the same Holter summary."""
    text = "最慢心率 48 次/分，发生于 03:12；房性早搏 126 次，短阵房性心动过速 2 阵（10:21）。"
    spans = [("48 次/分", "HR"), ("03:12", "TIME"), ("房性早搏", "EVENT"), ("126 次", "VALUE"),
             ("短阵房性心动过速", "EVENT"), ("2 阵", "VALUE"), ("10:21", "TIME")]
    model = [Entity(text.index(s), text.index(s) + len(s), label, 0.9, "model", {}) for s, label in spans]
    from_model = structured_result(text, model)["summary"]["holter"]
    from_rules = structured_result(text, extract_ecg(text))["summary"]["holter"]
    assert from_model == from_rules == {
        "heart_rate": {"min": {"value": 48, "unit": "bpm", "time": "03:12"}},
        "premature_beats": {"atrial": {"count": 126, "runs": 2, "run_time": "10:21"}}}


def test_merged_with_the_rules_agreement_keeps_the_values_and_the_model_adds_what_the_rules_miss():
    text = "最快心率 142 次/分，发生于 14:35；室早 38 次。"
    labels = ["HR", "VALUE", "TIME", "EVENT", "DIAG"]
    rules = map_labels(extract_ecg(text), label_map_for(labels))
    model = [Entity(text.index("142 次/分"), text.index("142 次/分") + 7, "HR", 0.8, "model", {}),
             Entity(text.index("14:35"), text.index("14:35") + 5, "TIME", 0.7, "model", {})]
    merged = merge_entities(model, rules)
    hr = next(e for e in merged if e.label == "HR")
    assert hr.source == "both" and hr.attrs["value"] == 142 and hr.score > 0.95
    holter = structured_result(text, merged)["summary"]["holter"]
    assert holter["heart_rate"]["max"] == {"value": 142, "unit": "bpm", "time": "14:35"}
    assert holter["premature_beats"]["ventricular"]["count"] == 38
    # a model entity alone where the rules found nothing still counts
    only_model = [Entity(text.index("38 次"), text.index("38 次") + 4, "VALUE", 0.8, "model", {}),
                  Entity(text.index("室早"), text.index("室早") + 2, "EVENT", 0.8, "model", {})]
    assert structured_result(text, only_model)["summary"]["holter"]["premature_beats"] == {
        "ventricular": {"count": 38}}


def test_linear_on_a_long_holter_report():
    import time

    unit = "最慢心率 48 次/分，发生于 03:12；房性早搏 126 次，短阵房速 2 阵（10:21）。126 PVCs, longest pause 2.4 s. "
    small, big = unit * 50, unit * 500
    started = time.perf_counter()
    extract_ecg(small)
    t_small = time.perf_counter() - started
    started = time.perf_counter()
    extract_ecg(big)
    t_big = time.perf_counter() - started
    assert t_big < 30 * max(t_small, 0.005), (t_small, t_big)  # 10x the text, well under 100x the time
