"""core/rules: the ECG rule extractor on hand-written English, Chinese and German sentences (values, units, ranges,
seconds -> ms, statements with SCP codes), negation / uncertainty scope, and the rule -> project label mapping."""

from __future__ import annotations

import pytest

from core.rules import DEMO_LABEL_MAP, RULE_LABELS, extract_ecg, label_map_for, map_labels, normalise_entity
from core.rules.lexicon import RESOURCES, default_lexicon
from core.rules.negation import annotate
from core.types import Entity, ReportLensError


def found(text: str, **kw) -> dict[str, list[tuple[str, Entity]]]:
    out: dict[str, list[tuple[str, Entity]]] = {}
    for e in extract_ecg(text, **kw):
        assert e.source == "rule" and 0 < e.score <= 1
        out.setdefault(e.label, []).append((text[e.start : e.end], e))
    return out


def one(text: str, label: str) -> tuple[str, Entity]:
    hits = found(text)[label]
    assert len(hits) == 1, hits
    return hits[0]


# ---------------------------------------------------------------- measurements


@pytest.mark.parametrize(("text", "span", "value"), [
    ("HR 78 bpm.", "78 bpm", 78),
    ("Sinus rhythm, rate 78/min.", "78/min", 78),
    ("Heart rate: 102 beats per minute", "102 beats per minute", 102),
    ("心率78次/分", "78次/分", 78),
    ("心率：65 次/分钟，律齐", "65 次/分钟", 65),
    ("Ventricular rate 54", "54", 54),
    ("Atrial fibrillation at 120 bpm", "120 bpm", 120),
])
def test_heart_rate_values_and_spans(text, span, value):
    got, e = one(text, "HEART_RATE")
    assert got == span
    assert e.attrs["value"] == value and e.attrs["unit"] == "bpm" and e.attrs["measure"] == "HR"


def test_heart_rate_range_and_implausible():
    got, e = one("Ventricular rate 70-80 bpm", "HEART_RATE")
    assert got == "70-80 bpm" and e.attrs["value"] is None and e.attrs["range"] == [70, 80]
    got, e = one("心率 60~70次/分", "HEART_RATE")
    assert e.attrs["range"] == [60, 70] and got == "60~70次/分"
    _, e = one("HR 900 bpm", "HEART_RATE")
    assert e.attrs["implausible"] is True and e.score < 0.5
    assert "HEART_RATE" not in found("Weight 70 kg, 3 times a day")  # no unit, no keyword: no rate


def test_atrial_rate_is_not_the_heart_rate():
    _, e = one("vorhof:hf  280 tachykardes vorhofflimmern", "HEART_RATE")
    assert e.attrs["measure"] == "atrial rate" and e.attrs["value"] == 280


@pytest.mark.parametrize(("text", "label", "value", "span"), [
    ("PR 160 ms", "PR_INTERVAL", 160, "PR 160 ms"),
    ("PR interval 0.16 s", "PR_INTERVAL", 160, "PR interval 0.16 s"),
    ("PR 0.20", "PR_INTERVAL", 200, "PR 0.20"),
    ("QRS duration 0.09 sec", "QRS_DURATION", 90, "QRS duration 0.09 sec"),
    ("QRS 96 msec", "QRS_DURATION", 96, "QRS 96 msec"),
    ("QT interval: 400 ms", "QT_INTERVAL", 400, "QT interval: 400 ms"),
    ("QTc 452 ms", "QTC_INTERVAL", 452, "QTc 452 ms"),
    ("PR间期 160ms", "PR_INTERVAL", 160, "PR间期 160ms"),
    ("QRS时限 0.10秒", "QRS_DURATION", 100, "QRS时限 0.10秒"),
    ("QTc间期 440 毫秒", "QTC_INTERVAL", 440, "QTc间期 440 毫秒"),
    ("PQ-Zeit 180 ms", "PR_INTERVAL", 180, "PQ-Zeit 180 ms"),
])
def test_intervals_in_ms(text, label, value, span):
    got, e = one(text, label)
    assert got == span and e.attrs["value"] == value and e.attrs["unit"] == "ms"


def test_seconds_are_converted_and_said_so():
    _, e = one("PR interval 0.16 s", "PR_INTERVAL")
    assert e.attrs["converted_from"] == "0.16 s"
    _, e = one("PR 160 ms", "PR_INTERVAL")
    assert "converted_from" not in e.attrs


def test_qt_slash_qtc_gives_two_values():
    text = "QT/QTc 380/420 ms"
    got = found(text)
    assert [(s, e.attrs["value"]) for s, e in got["QT_INTERVAL"]] == [("380", 380)]
    assert [(s, e.attrs["value"]) for s, e in got["QTC_INTERVAL"]] == [("420 ms", 420)]


def test_implausible_interval_is_flagged_not_dropped():
    _, e = one("QRS 900 ms", "QRS_DURATION")
    assert e.attrs["implausible"] is True and e.score < 0.5


@pytest.mark.parametrize(("text", "value"), [("Axis -30°", -30), ("QRS axis +60 degrees", 60), ("电轴 +75°", 75),
                                             ("frontal axis 110", 110)])
def test_axis_degrees(text, value):
    _, e = one(text, "AXIS")
    assert e.attrs["value"] == value and e.attrs["unit"] == "deg"


@pytest.mark.parametrize(("text", "code"), [("Left axis deviation.", "LAD"), ("电轴左偏", "LAD"),
                                            ("right axis deviation", "RAD"), ("ueberdrehter linkstyp", "LAD"),
                                            ("Normal axis.", "MID"), ("lagetyp normal", "MID")])
def test_axis_statements(text, code):
    _, e = one(text, "AXIS")
    assert e.attrs["axis"] == code


# ---------------------------------------------------------------- statements


@pytest.mark.parametrize(("text", "label", "scp"), [
    ("Sinus rhythm", "RHYTHM", "SR"), ("Normal sinus rhythm", "RHYTHM", "SR"), ("窦性心律", "RHYTHM", "SR"),
    ("Atrial fibrillation", "RHYTHM", "AFIB"), ("房颤", "RHYTHM", "AFIB"), ("心房颤动", "RHYTHM", "AFIB"),
    ("AF with RVR", "RHYTHM", "AFIB"), ("窦性心动过速", "RHYTHM", "STACH"), ("窦性心动过缓", "RHYTHM", "SBRAD"),
    ("sinusbradykardie", "RHYTHM", "SBRAD"), ("vorhofflimmern", "RHYTHM", "AFIB"), ("vorhofflattern", "RHYTHM", "AFLT"),
    ("First degree AV block", "CONDUCTION", "1AVB"), ("1st degree AV block", "CONDUCTION", "1AVB"),
    ("一度房室传导阻滞", "CONDUCTION", "1AVB"), ("a-v block i", "CONDUCTION", "1AVB"),
    ("右束支传导阻滞", "CONDUCTION", "CRBBB"), ("完全性左束支传导阻滞", "CONDUCTION", "CLBBB"),
    ("Right bundle branch block", "CONDUCTION", "CRBBB"), ("RBBB", "CONDUCTION", "CRBBB"),
    ("incomplete right bundle branch block", "CONDUCTION", "IRBBB"),
    ("unvollstÄndiger rechtsschenkelblock", "CONDUCTION", "IRBBB"), ("linksschenkelblock", "CONDUCTION", "CLBBB"),
    ("left anterior fascicular block", "CONDUCTION", "LAFB"), ("linksanteriorer hemiblock", "CONDUCTION", "LAFB"),
    ("ST段压低", "FINDING", "STD_"), ("ST段抬高", "FINDING", "STE_"), ("ST depression", "FINDING", "STD_"),
    ("Left ventricular hypertrophy", "FINDING", "LVH"), ("linkshypertrophie", "FINDING", "LVH"),
    ("qt-verlÄngerung", "FINDING", "LNGQT"), ("premature ventricular complexes", "FINDING", "PVC"),
    ("ventrikulÄre extrasystole(n)", "FINDING", "PVC"), ("T波倒置", "FINDING", "INVT"),
    ("正常心电图", "FINDING", "NORM"),
])
def test_statements_have_labels_and_scp_codes(text, label, scp):
    got, e = one(text, label)
    assert got.lower() in text.lower() and e.attrs["scp_code"] == scp and e.attrs["concept"]


def test_longest_term_wins_and_abbreviations_are_case_sensitive():
    got, e = one("Incomplete right bundle branch block.", "CONDUCTION")
    assert got == "Incomplete right bundle branch block" and e.attrs["scp_code"] == "IRBBB"
    assert "RHYTHM" not in found("af")  # "AF" only in capitals
    assert "RHYTHM" not in found("Schlafstörung")  # no match inside a word


def test_a_whole_english_report():
    text = ("Sinus rhythm at 72 bpm. PR 0.16 s, QRS 90 ms, QT/QTc 380/420 ms. Left axis deviation. "
            "No ST elevation or pathological Q waves. Possible LVH.")
    got = found(text)
    assert set(got) == {"RHYTHM", "HEART_RATE", "PR_INTERVAL", "QRS_DURATION", "QT_INTERVAL", "QTC_INTERVAL", "AXIS",
                        "FINDING"}
    findings = {s: (e.attrs["negated"], e.attrs["uncertain"]) for s, e in got["FINDING"]}
    assert findings == {"ST elevation": (True, False), "pathological Q waves": (True, False), "LVH": (False, True)}
    assert got["RHYTHM"][0][1].attrs["negated"] is False
    assert "negated" not in got["HEART_RATE"][0][1].attrs  # measurements are never negated


def test_a_whole_chinese_report():
    text = "窦性心律，心率78次/分，PR间期 160ms。一度房室传导阻滞。未见ST段抬高，T波倒置。可能房颤。"
    got = found(text)
    assert got["HEART_RATE"][0][1].attrs["value"] == 78
    flags = {s: (e.attrs["negated"], e.attrs["uncertain"]) for s, e in got["FINDING"] + got["RHYTHM"]}
    # the Chinese comma ends the scope of 未见: T波倒置 is present
    assert flags == {"窦性心律": (False, False), "ST段抬高": (True, False), "T波倒置": (False, False),
                     "房颤": (False, True)}


# ---------------------------------------------------------------- negation and uncertainty scope


def flags(text: str) -> dict[str, tuple[bool, bool]]:
    return {text[e.start : e.end]: (e.attrs["negated"], e.attrs["uncertain"]) for e in extract_ecg(text)
            if "negated" in e.attrs}


@pytest.mark.parametrize(("text", "expected"), [
    ("No ST elevation.", {"ST elevation": (True, False)}),
    ("Sinus rhythm without ST depression.", {"Sinus rhythm": (False, False), "ST depression": (True, False)}),
    ("No evidence of atrial fibrillation.", {"atrial fibrillation": (True, False)}),
    ("No ST elevation or ST depression.", {"ST elevation": (True, False), "ST depression": (True, False)}),
    ("No ST elevation. Atrial fibrillation.", {"ST elevation": (True, False), "Atrial fibrillation": (False, False)}),
    ("No ST elevation but T wave inversion in V1.",
     {"ST elevation": (True, False), "T wave inversion": (False, False)}),
    ("Atrial fibrillation has been ruled out.", {"Atrial fibrillation": (True, False)}),
    ("Rule out anterior infarct.", {"anterior infarct": (False, True)}),
    ("Cannot rule out anterior infarct.", {"anterior infarct": (False, True)}),
    ("Cannot exclude LVH.", {"LVH": (False, True)}),
    ("Probable left atrial enlargement.", {"left atrial enlargement": (False, True)}),
    ("未见ST段压低", {"ST段压低": (True, False)}),
    ("无房颤", {"房颤": (True, False)}),
    ("考虑左心室肥厚", {"左心室肥厚": (False, True)}),
    ("疑似下壁心肌梗死", {"下壁心肌梗死": (False, True)}),
    ("房颤可能", {"房颤": (False, True)}),
    ("下壁心肌梗死不除外", {"下壁心肌梗死": (False, True)}),
    ("sinusrhythmus linkshypertrophie mÖglich", {"sinusrhythmus": (False, False), "linkshypertrophie": (False, True)}),
    ("inferiorer infarkt nicht auszuschliessen", {"inferiorer infarkt": (False, True)}),
    ("kein vorhofflimmern", {"vorhofflimmern": (True, False)}),
    ("verdacht auf p-sinistrocardiale linkstyp", {"p-sinistrocardiale": (False, True), "linkstyp": (False, False)}),
    ("No change. Atrial fibrillation.", {"Atrial fibrillation": (False, False)}),
])
def test_negation_and_uncertainty_scope(text, expected):
    assert flags(text) == expected


def test_cue_far_away_does_not_reach():
    text = "No significant abnormality was seen on this tracing today at all, sinus rhythm"
    assert flags(text) == {"sinus rhythm": (False, False)}


def test_cues_as_entities_and_on_model_entities():
    text = "No pleural effusion. Possible pneumothorax."
    cues = [e for e in extract_ecg(text, include_cues=True) if e.label in ("NEGATION", "UNCERTAINTY")]
    assert cues == []  # radiology words are not in the ECG lexicon, so no cue scopes anything
    model = [Entity(3, 19, "FINDING", 0.8), Entity(30, 42, "FINDING", 0.7), Entity(0, 2, "NEGATION", 0.9)]
    out = annotate(text, model)
    assert [(e.attrs.get("negated"), e.attrs.get("uncertain")) for e in out] == [(True, False), (False, True),
                                                                                 (None, None)]
    assert out[0].attrs["negation_cue"] == [0, 2, "No"]
    text2 = "No ST elevation."
    assert [(e.label, text2[e.start:e.end]) for e in extract_ecg(text2, include_cues=True)] == [
        ("NEGATION", "No"), ("FINDING", "ST elevation")]


# ---------------------------------------------------------------- label mapping and normalisation


def test_demo_mapping_follows_the_demo_conventions():
    text = ("Sinus rhythm 72 bpm. PR 160 ms, QTc 430 ms. Normal axis. Axis +60. Right bundle branch block. "
            "No ST elevation. Normal ECG.")
    demo = ("RHYTHM", "HEART_RATE", "INTERVAL", "FINDING", "ANATOMY", "NEGATION")
    mapping = label_map_for(demo)
    ents = extract_ecg(text, include_cues=True)
    mapped = map_labels(ents, mapping)
    assert [(m.label, text[m.start:m.end]) for m in mapped] == [
        ("RHYTHM", "Sinus rhythm"), ("HEART_RATE", "72 bpm"), ("INTERVAL", "PR 160 ms"), ("INTERVAL", "QTc 430 ms"),
        ("FINDING", "Right bundle branch block"), ("NEGATION", "No"), ("FINDING", "ST elevation")]
    assert mapped[2].attrs["rule_label"] == "PR_INTERVAL"
    for e in ents:  # the written-out DEMO_LABEL_MAP says the same for every non-normal, non-degree entity
        if not e.attrs.get("normal") and not (e.label == "AXIS" and "value" in e.attrs):
            assert mapping(e) == DEMO_LABEL_MAP[e.label]


def test_mapping_overrides_unmapped_and_errors():
    e = Entity(0, 5, "CONDUCTION", 0.9, "rule", {})
    assert label_map_for(["Disease_disorder"])(e) == "CONDUCTION"  # kept for review
    assert label_map_for(["Disease_disorder"], keep_unmapped=False)(e) is None  # never pre-annotated
    assert label_map_for(["Disease_disorder"], {"CONDUCTION": "Disease_disorder"})(e) == "Disease_disorder"
    assert label_map_for([])(e) == "CONDUCTION"
    assert label_map_for(list(RULE_LABELS))(Entity(0, 5, "FINDING", 1, "rule", {"normal": True})) == "FINDING"
    with pytest.raises(ReportLensError, match="rule_label_map"):
        label_map_for(["X"], {"CONDUCTION": 3})  # type: ignore[dict-item]
    assert map_labels([e], {"CONDUCTION": None}) == []


def test_normalise_model_entities():
    text = "Rate 72 bpm, QTc 428 ms. Atrial fibrillation."
    hr = normalise_entity(text, Entity(5, 11, "HEART_RATE", 0.8))
    assert hr.attrs == {"measure": "HR", "value": 72, "unit": "bpm"}
    qtc = normalise_entity(text, Entity(13, 23, "INTERVAL", 0.8))
    assert qtc.attrs["measure"] == "QTc" and qtc.attrs["value"] == 428
    af = normalise_entity(text, Entity(25, 44, "RHYTHM", 0.8))
    assert af.attrs["scp_code"] == "AFIB"
    bare = normalise_entity("Rate 72.", Entity(5, 7, "HEART_RATE", 0.8))
    assert bare.attrs["value"] == 72


def test_lexicon_is_bundled_with_its_licences():
    for name in ("mcs_eng_thesaurus.json", "ptbxl_scp_statements.csv", "extra_terms.json", "LICENSE-ptb-xl.txt",
                 "LICENSE-mcs-ecg-thesaurus", "README.md"):
        assert (RESOURCES / name).is_file(), name
    assert len(default_lexicon()) > 500
    assert "shared" not in str(RESOURCES)
