"""Label Studio import on hand-written files: every format, every bad-input case, and the round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.formats.conll import parse_tag, rebuild, tags_to_spans
from core.formats.labelconfig import LabelConfig, parse_label_config
from core.formats.registry import detect, iter_tasks, parse_export
from core.formats.report import ParseReport
from core.spancheck import check_region, reanchor
from core.types import ReportLensError, Span

NER_XML = """
<View>
  <Labels name="label" toName="text">
    <Label value="DRUG"/><Label value="DOSE"/><Label value="FREQ"/>
  </Labels>
  <Text name="text" value="$report"/>
  <Choices name="urgency" toName="text"><Choice value="routine"/><Choice value="urgent"/></Choices>
</View>
"""
CONFIG = parse_label_config(NER_XML)
TEXT = "Metoprolol 50 mg twice daily. Aspirin 100 mg/day."


def write(tmp_path: Path, payload: object, name: str = "export.json") -> Path:
    path = tmp_path / name
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    elif isinstance(payload, str):
        path.write_text(payload, encoding="utf-8")
    else:
        path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def region(start: object, end: object, label: str, text: str | None = None, **extra: object) -> dict:
    value: dict = {"start": start, "end": end, "labels": [label]}
    if text is not None:
        value["text"] = text
    return {"id": f"r{start}", "from_name": "label", "to_name": "text", "type": "labels", "value": value, **extra}


def task(results: list, task_id: int = 812, text: str = TEXT, **extra: object) -> dict:
    return {
        "id": task_id,
        "data": {"report": text, "patient": "p1"},
        "annotations": [{"id": 1, "completed_by": 3, "result": results, "was_cancelled": False}],
        **extra,
    }


def parse_one(tmp_path: Path, results: list, config: LabelConfig | None = CONFIG, **kw: object):
    tasks, report = parse_export(write(tmp_path, [task(results, **kw)]), config)
    return tasks, report


def only(report: ParseReport, code: str):
    found = [i for i in report.issues if i.code == code]
    assert len(found) == 1, [i.to_dict() for i in report.issues]
    return found[0]


# ---------------------------------------------------------------- label config


def test_parse_label_config_reads_text_field_labels_and_choices():
    assert CONFIG.text_field == "report"
    assert CONFIG.span_labels == ("DOSE", "DRUG", "FREQ")
    assert CONFIG.choice_labels == ("routine", "urgent")
    assert CONFIG.span_from_names == ("label",)
    assert CONFIG.choice_from_names == ("urgency",)
    assert CONFIG.to_name == "text"
    assert CONFIG.inferred is False


def test_label_config_round_trips_through_dict():
    assert LabelConfig.from_dict(json.loads(json.dumps(CONFIG.to_dict()))) == CONFIG


def test_label_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ReportLensError, match="Unknown label config keys"):
        LabelConfig.from_dict({"text_field": "text", "colour": "red"})


def test_labels_pick_their_text_and_aliases_replace_values():
    xml = """<View>
      <Text name="title" value="$title"/>
      <Text name="body" value="$body"/>
      <Labels name="ner" toName="body"><Label value="Drug" alias="DRUG"/><Label value="Dose"/></Labels>
      <Labels name="t" toName="title"><Label value="Heading"/></Labels>
      <Choices name="c" toName="body" perRegion="true"><Choice value="negated"/></Choices>
    </View>"""
    cfg = parse_label_config(xml)
    assert (cfg.text_field, cfg.to_name) == ("body", "body")
    assert cfg.span_labels == ("DRUG", "Dose")
    assert cfg.choice_labels == ()  # per-region choices describe a span, not the document


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        ("", "empty"),
        ("<View><Labels name='x' toName='t'></View>", "not valid XML.*line 1"),
        ("<View><Image name='i' value='$image'/></View>", "no <Text"),
        ("<View><Text name='t' value='fixed text'/></View>", "not a data field"),
        ('<!DOCTYPE v [<!ENTITY a "b">]><View>&a;</View>', "refused for safety"),
    ],
)
def test_bad_label_configs_raise_with_a_fix(xml, match):
    with pytest.raises(ReportLensError, match=match):
        parse_label_config(xml)


# ---------------------------------------------------------------- full JSON export


def test_round_trip_of_json_export_with_two_annotations_and_predictions(tmp_path):
    export = [
        {
            "id": 7,
            "data": {"report": TEXT, "ward": "cardio"},
            "annotations": [
                {
                    "id": 11,
                    "completed_by": {"id": 2, "email": "ann@example.org"},
                    "created_at": "2024-01-01T10:00:00Z",
                    "updated_at": "2024-01-02T10:00:00Z",
                    "was_cancelled": False,
                    "ground_truth": True,
                    "result": [
                        region(0, 10, "DRUG", "Metoprolol"),
                        region(11, 16, "DOSE", "50 mg"),
                        {
                            "from_name": "urgency",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": ["routine"]},
                        },
                        {"from_id": "r0", "to_id": "r11", "type": "relation", "labels": []},
                    ],
                },
                {"id": 12, "completed_by": 5, "was_cancelled": True, "result": [region(30, 37, "DRUG", "Aspirin")]},
            ],
            "predictions": [
                {
                    "id": 99,
                    "model_version": "lora-3",
                    "score": 0.8,
                    "result": [region(30, 37, "DRUG", "Aspirin", score=0.91), region(38, 44, "DOSE", "100 mg")],
                },
            ],
        }
    ]
    tasks, report = parse_export(write(tmp_path, export), CONFIG)
    assert report.format == "json" and report.tasks_seen == 1 and report.config == CONFIG
    (t,) = tasks
    assert (t.task_id, t.text, t.meta) == (7, TEXT, {"ward": "cardio"})
    first, cancelled, pred = t.annotations
    assert first.spans == (Span(0, 10, "DRUG"), Span(11, 16, "DOSE"))
    assert [t.text[s.start : s.end] for s in first.spans] == ["Metoprolol", "50 mg"]
    assert first.choices == ("routine",)
    assert (first.source, first.author, first.external_id) == ("human", "ann@example.org", "11")
    assert first.ground_truth and not first.cancelled
    assert (first.created_at, first.updated_at) == ("2024-01-01T10:00:00Z", "2024-01-02T10:00:00Z")
    assert cancelled.cancelled and cancelled.author == "5" and cancelled.spans == (Span(30, 37, "DRUG"),)
    assert (pred.source, pred.model_version, pred.score, pred.external_id) == ("model", "lora-3", 0.8, "99")
    assert pred.spans == (Span(30, 37, "DRUG"), Span(38, 44, "DOSE"))
    assert pred.span_scores == (0.91, None)
    ignored = only(report, "ignored_results")
    assert ignored.level == "info" and "relation ×1" in ignored.message
    assert not report.errors and not report.warnings


def test_multi_label_region_gives_one_span_per_label(tmp_path):
    result = region(0, 10, "DRUG", "Metoprolol")
    result["value"]["labels"] = ["DRUG", "FREQ"]
    tasks, _ = parse_one(tmp_path, [result])
    assert tasks[0].annotations[0].spans == (Span(0, 10, "DRUG"), Span(0, 10, "FREQ"))


def test_single_task_object_is_accepted_with_a_note(tmp_path):
    tasks, report = parse_export(write(tmp_path, task([region(0, 10, "DRUG")])), CONFIG)
    assert len(tasks) == 1 and only(report, "single_task").level == "info"


def test_prediction_ids_are_skipped_with_one_note(tmp_path):
    items = [task([], task_id=i, predictions=[10 + i, 20 + i]) for i in (1, 2)]
    tasks, report = parse_export(write(tmp_path, items), CONFIG)
    assert [len(t.annotations) for t in tasks] == [1, 1]
    assert "4 predictions" in only(report, "prediction_ids_skipped").message


def test_overlapping_spans_are_kept_and_duplicates_dropped(tmp_path):
    results = [region(0, 10, "DRUG"), region(0, 16, "DOSE"), region(0, 10, "DRUG")]
    tasks, report = parse_one(tmp_path, results)
    assert tasks[0].annotations[0].spans == (Span(0, 10, "DRUG"), Span(0, 16, "DOSE"))
    dup = only(report, "duplicate_span")
    assert dup.level == "info" and "Task 812" in dup.message and dup.span == (0, 10, "DRUG")


def test_without_config_labels_are_inferred_and_said_so(tmp_path):
    results = [region(0, 10, "DRUG"), {"type": "choices", "from_name": "u", "value": {"choices": ["urgent"]}}]
    item = {"data": {"report": TEXT, "image": "s3://bucket/ecg.png"}, "annotations": [{"result": results}]}
    tasks, report = parse_export(write(tmp_path, [item]))
    assert tasks[0].annotations[0].spans == (Span(0, 10, "DRUG"),)
    cfg = report.config
    assert cfg is not None and cfg.inferred
    assert (cfg.span_labels, cfg.choice_labels, cfg.text_field) == (("DRUG",), ("urgent",), "report")
    note = only(report, "inferred_config")
    assert "inferred 1 span labels (DRUG) and 1 choice labels" in note.message and "--config" in note.message
    assert only(report, "text_field_guessed").level == "info"


def test_report_config_is_set_only_when_the_iterator_is_exhausted(tmp_path):
    report = ParseReport()
    it = iter_tasks(write(tmp_path, [task([]), task([], task_id=2)]), CONFIG, report)
    next(it)
    assert report.config is None
    list(it)
    assert report.config is not None and report.tasks_seen == 2


# ---------------------------------------------------------------- span validation


def test_offset_mismatch_is_reanchored_nearby(tmp_path):
    # 'mg/day' really sits at (42, 48); the region says (43, 49)
    tasks, report = parse_one(tmp_path, [region(43, 49, "DOSE", "mg/day")])
    assert tasks[0].annotations[0].spans == (Span(42, 48, "DOSE"),)
    issue = only(report, "offset_repaired")
    assert issue.level == "warning" and issue.task == "Task 812" and issue.span == (43, 49, "DOSE")
    assert issue.message.startswith("Task 812: span (43, 49, 'DOSE') text 'mg/day' does not match")
    assert "re-anchored to (42, 48)" in issue.message and report.repaired == 1


def test_offset_mismatch_repaired_across_whitespace_differences():
    text = "Impression:\nmild  cardiomegaly.\n"
    checked = check_region(text, 0, 10, "FINDING", "mild cardiomegaly", "Task 1")
    assert checked.offsets == (12, 30) and checked.repaired
    assert "whitespace" in checked.issue.message


def test_reanchor_picks_the_nearest_copy():
    text = "pain. " * 20
    assert reanchor(text, 61, 65, "pain") == ((60, 64), "finding the text nearby")


def test_offsets_counted_in_utf16_units_are_converted():
    text = "🫀 Echo: EF 35%"  # the heart emoji counts 2 in JavaScript
    checked = check_region(text, 9, 12, "EF", "EF ", "Task 1")
    assert checked.offsets == (8, 11) and "UTF-16" in checked.issue.message


def test_whitespace_only_mismatch_is_trimmed(tmp_path):
    tasks, report = parse_one(tmp_path, [region(10, 16, "DOSE", "50 mg")])  # ' 50 mg' -> '50 mg'
    assert tasks[0].annotations[0].spans == (Span(11, 16, "DOSE"),)
    issue = only(report, "offset_trimmed")
    assert issue.level == "warning" and "Task 812" in issue.message and issue.span == (10, 16, "DOSE")


def test_text_not_found_is_an_error_and_the_span_is_skipped(tmp_path):
    tasks, report = parse_one(tmp_path, [region(0, 10, "DRUG", "Atorvastatin")])
    assert tasks[0].annotations[0].spans == ()
    issue = only(report, "offset_mismatch")
    assert issue.level == "error" and issue.span == (0, 10, "DRUG") and "[[Metoprolol]]" in issue.snippet
    assert "Task 812: span (0, 10, 'DRUG')" in issue.message and "skipped" in issue.message


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        ("0", 10, "offset_not_integer"),
        (None, 10, "offset_not_integer"),
        (10, 10, "empty_span"),
        (12, 4, "empty_span"),
        (40, 900, "offset_out_of_range"),
        (-3, 4, "offset_out_of_range"),
    ],
)
def test_bad_offsets_are_errors_naming_task_and_span(tmp_path, start, end, code):
    tasks, report = parse_one(tmp_path, [region(start, end, "DRUG")])
    assert tasks[0].annotations[0].spans == ()
    issue = only(report, code)
    assert issue.level == "error" and issue.task == "Task 812"
    assert issue.message.startswith("Task 812: span (") and repr("DRUG") in issue.message
    if code != "offset_not_integer":
        assert issue.span == (start, end, "DRUG")


def test_integral_float_offsets_are_accepted(tmp_path):
    tasks, report = parse_one(tmp_path, [region(0.0, 10.0, "DRUG")])
    assert tasks[0].annotations[0].spans == (Span(0, 10, "DRUG"),) and not report.errors


def test_unknown_label_lists_known_labels(tmp_path):
    choice = {"type": "choices", "from_name": "urgency", "value": {"choices": ["stat"]}}
    tasks, report = parse_one(tmp_path, [region(0, 10, "MEDICATION", "Metoprolol"), choice])
    assert tasks[0].annotations[0].spans == () and tasks[0].annotations[0].choices == ()
    span_issue, choice_issue = [i for i in report.issues if i.code == "unknown_label"]
    assert span_issue.span == (0, 10, "MEDICATION") and "Task 812" in span_issue.message
    assert "DOSE, DRUG, FREQ" in span_issue.message and "<Labels>" in span_issue.message
    assert "'stat'" in choice_issue.message and "routine, urgent" in choice_issue.message


def test_region_without_label_is_reported(tmp_path):
    result = region(0, 10, "DRUG")
    result["value"]["labels"] = []
    tasks, report = parse_one(tmp_path, [result])
    assert tasks[0].annotations[0].spans == () and "Task 812" in only(report, "missing_label").message


def test_labels_on_another_text_are_ignored(tmp_path):
    tasks, report = parse_one(tmp_path, [region(0, 3, "DRUG", to_name="title")])
    assert tasks[0].annotations[0].spans == ()
    assert "labels on 'title' ×1" in only(report, "ignored_results").message


# ---------------------------------------------------------------- task-level problems


def test_empty_text_skips_the_task(tmp_path):
    tasks, report = parse_export(write(tmp_path, [task([], text="  \n "), task([], task_id=2)]), CONFIG)
    assert [t.task_id for t in tasks] == [2] and report.tasks_skipped == 1
    issue = only(report, "empty_text")
    assert issue.level == "error" and issue.message.startswith("Task 812:")


def test_missing_text_field_names_available_fields(tmp_path):
    item = {"id": 5, "data": {"body": TEXT, "ward": "x"}, "annotations": []}
    tasks, report = parse_export(write(tmp_path, [item]), CONFIG)
    issue = only(report, "missing_text_field")
    assert tasks == [] and "Task 5" in issue.message and "'report'" in issue.message and "body, ward" in issue.message


def test_text_field_guess_skips_urls(tmp_path):
    item = {"data": {"image": "https://example.org/x.png"}}
    tasks, report = parse_export(write(tmp_path, [item]))
    assert tasks == [] and "image" in only(report, "missing_text_field").message


def test_missing_data_is_an_error_for_that_task(tmp_path):
    items = [task([], task_id=1), {"id": 2, "annotations": []}]
    tasks, report = parse_export(write(tmp_path, items), CONFIG)
    issue = only(report, "missing_data")
    assert len(tasks) == 1 and "Task 2" in issue.message and "annotations, id" in issue.message


def test_non_task_items_after_the_first_are_skipped(tmp_path):
    tasks, report = parse_export(write(tmp_path, [task([]), "oops"]), CONFIG)
    assert len(tasks) == 1 and "Item #2" in only(report, "not_a_task").message


def test_empty_export_list_warns(tmp_path):
    tasks, report = parse_export(write(tmp_path, []))
    assert tasks == [] and only(report, "no_tasks").level == "warning"


# ---------------------------------------------------------------- files that cannot be read


@pytest.mark.parametrize("content", [b"", b"  \n\t "])
def test_empty_file_raises(tmp_path, content):
    with pytest.raises(ReportLensError, match="export.json is empty; export .* again"):
        parse_export(write(tmp_path, content))


def test_malformed_json_names_line_column_and_tasks_read(tmp_path):
    good = json.dumps(task([]))
    path = write(tmp_path, f'[\n{good},\n{good},\n{{"id": 3, "data": {{"report": "x",}}}}\n]')
    with pytest.raises(ReportLensError) as err:
        parse_export(path, CONFIG)
    msg = str(err.value)
    assert "line 4, column" in msg and "after 2 complete tasks" in msg
    assert "the file is not valid JSON; re-export from Label Studio" in msg


def test_truncated_json_raises(tmp_path):
    with pytest.raises(ReportLensError, match="not valid JSON"):
        parse_export(write(tmp_path, json.dumps([task([])])[:-20]))


def test_json_lines_get_a_hint(tmp_path):
    line = json.dumps(task([]))
    with pytest.raises(ReportLensError, match="JSON Lines"):
        parse_export(write(tmp_path, f"{line}\n{line}\n"), CONFIG)


@pytest.mark.parametrize(
    ("payload", "found"),
    [
        ("42", "a number"),
        ('"hello"', "a string"),
        ("null", "null"),
        ({"tasks": []}, "one object with keys \\(tasks\\) but no 'data'"),
        (["a", "b"], "a list whose first item is a string \\('a'\\)"),
        ([[1, 2]], "a list whose first item is a list"),
    ],
)
def test_wrong_top_level_shape_raises_naming_what_was_found(tmp_path, payload, found):
    with pytest.raises(ReportLensError, match=f"holds {found}.*Expected a Label Studio export"):
        parse_export(write(tmp_path, payload))


def test_non_utf8_bytes_raise_with_byte_offset(tmp_path):
    raw = json.dumps([task([])]).encode()
    cut = raw.index(b"Metoprolol")
    path = write(tmp_path, raw[:cut] + b"\xe9" + raw[cut:])  # a Latin-1 'é'
    with pytest.raises(ReportLensError, match=f"not valid UTF-8 at byte {cut} \\(line 1\\).*Re-save the file as UTF-8"):
        parse_export(path, CONFIG)


def test_non_utf8_far_into_a_large_file_is_found(tmp_path):
    raw = json.dumps([task([], task_id=i) for i in range(2000)]).encode()
    cut = len(raw) - 500
    cut = raw.index(b"Metoprolol", cut - 300)
    with pytest.raises(ReportLensError, match=f"at byte {cut}"):
        parse_export(write(tmp_path, raw[:cut] + b"\xff" + raw[cut:]), CONFIG)


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + json.dumps([task([region(0, 10, "DRUG")])]).encode())
    assert detect(path).name == "json"
    tasks, report = parse_export(path, CONFIG)
    assert tasks[0].annotations[0].spans == (Span(0, 10, "DRUG"),) and not report.errors


def test_utf16_file_is_refused_with_advice(tmp_path):
    path = write(tmp_path, json.dumps([task([])]).encode("utf-16"))
    with pytest.raises(ReportLensError, match="UTF-16.*Re-save the file as UTF-8"):
        parse_export(path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(ReportLensError, match="No such file"):
        parse_export(tmp_path / "nope.json")
    with pytest.raises(ReportLensError, match="Cannot tell the format"):
        detect(write(tmp_path, "hello\n", "x.txt"))
    with pytest.raises(ReportLensError, match="Unknown export format"):
        iter_tasks(write(tmp_path, []), fmt="csv")


# ---------------------------------------------------------------- JSON-MIN


def min_row(**extra: object) -> dict:
    row = {
        "report": TEXT,
        "id": 31,
        "ward": "cardio",
        "label": [
            {"start": 0, "end": 10, "text": "Metoprolol", "labels": ["DRUG"]},
            {"start": 43, "end": 49, "text": "mg/day", "labels": ["DOSE"]},
        ],
        "urgency": "urgent",
        "annotator": "ann@example.org",
        "annotation_id": 4,
        "created_at": "2024-02-01T00:00:00Z",
        "updated_at": "2024-02-02T00:00:00Z",
        "lead_time": 12.5,
    }
    row.update(extra)
    return row


def test_json_min_rows_become_tasks_with_one_human_annotation(tmp_path):
    path = write(tmp_path, [min_row(), min_row(id=32, urgency={"choices": ["routine", "urgent"]}, label=[])])
    assert detect(path).name == "json-min"
    tasks, report = parse_export(path, CONFIG)
    first, second = tasks
    assert (first.task_id, first.text, first.meta) == (31, TEXT, {"ward": "cardio", "lead_time": 12.5})
    (ann,) = first.annotations
    assert ann.spans == (Span(0, 10, "DRUG"), Span(42, 48, "DOSE"))  # second one re-anchored
    assert (ann.choices, ann.author, ann.external_id) == (("urgent",), "ann@example.org", "4")
    assert (ann.created_at, ann.updated_at) == ("2024-02-01T00:00:00Z", "2024-02-02T00:00:00Z")
    assert second.annotations[0].choices == ("routine", "urgent") and second.annotations[0].spans == ()
    assert "Task 31" in only(report, "offset_repaired").message


def test_json_min_without_config_keeps_single_choices_as_meta(tmp_path):
    tasks, report = parse_export(write(tmp_path, [min_row(text=TEXT)]))
    assert tasks[0].meta["urgency"] == "urgent" and tasks[0].meta["report"] == TEXT
    assert "urgency" in only(report, "json_min_strings").message
    assert report.config.span_labels == ("DOSE", "DRUG") and report.config.span_from_names == ("label",)


def test_json_min_plain_task_list_has_no_annotation(tmp_path):
    tasks, _ = parse_export(write(tmp_path, [{"text": "Sinus rhythm."}, {"text": "Atrial fibrillation."}]))
    assert [t.text for t in tasks] == ["Sinus rhythm.", "Atrial fibrillation."]
    assert all(t.annotations == () and t.ref.startswith("Item #") for t in tasks)


# ---------------------------------------------------------------- CoNLL


LS_CONLL = """-DOCSTART- -X- O
Metoprolol -X- _ B-DRUG
50 -X- _ B-DOSE
mg -X- _ I-DOSE
twice -X- _ B-FREQ
daily. -X- _ I-FREQ

Aspirin -X- _ B-DRUG
100 -X- _ O
mg/day. -X- _ I-DOSE

"""


def spans_text(t):
    return [(t.text[s.start : s.end], s.label) for s in t.annotations[0].spans]


def test_conll_export_rebuilds_text_and_spans(tmp_path):
    path = write(tmp_path, LS_CONLL, "result.conll")
    assert detect(path).name == "conll"
    tasks, report = parse_export(path)
    assert [t.text for t in tasks] == ["Metoprolol 50 mg twice daily.", "Aspirin 100 mg/day."]
    assert all(t.task_id is None for t in tasks)
    assert spans_text(tasks[0]) == [("Metoprolol", "DRUG"), ("50 mg", "DOSE"), ("twice daily.", "FREQ")]
    assert spans_text(tasks[1]) == [("Aspirin", "DRUG"), ("mg/day.", "DOSE")]
    orphan = only(report, "orphan_inside")
    assert orphan.level == "warning" and orphan.task == "Item #2" and orphan.span == (12, 19, "DOSE")
    assert report.config.span_labels == ("DOSE", "DRUG", "FREQ") and only(report, "conll_layout")


def test_classic_conll_documents_split_on_docstart(tmp_path):
    text = (
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
        "Blackburn NNP I-NP I-PER\n\n-DOCSTART- -X- -X- O\n\nBRUSSELS NNP B-NP B-LOC\n"
    )
    tasks, _ = parse_export(write(tmp_path, text, "eng.train"))
    assert [t.text for t in tasks] == ["EU rejects\nPeter Blackburn", "BRUSSELS"]
    assert spans_text(tasks[0]) == [("EU", "ORG"), ("Peter Blackburn", "PER")]


def test_conll_io_tagging_is_read_without_warnings(tmp_path):
    text = "-DOCSTART- -X- O\nchest -X- _ I-SITE\npain -X- _ I-SYMPTOM\nradiating -X- _ O\n"
    tasks, report = parse_export(write(tmp_path, text, "io.conll"))
    assert spans_text(tasks[0]) == [("chest", "SITE"), ("pain", "SYMPTOM")]
    assert not report.warnings and "IO tagging" in only(report, "conll_layout").message


def test_conll_unknown_labels_are_checked_against_config(tmp_path):
    tasks, report = parse_export(write(tmp_path, LS_CONLL.replace("B-FREQ", "B-ROUTE"), "r.conll"), CONFIG)
    assert ("twice", "ROUTE") not in spans_text(tasks[0])
    assert only(report, "unknown_label").span == (17, 22, "ROUTE")


def test_conll_non_utf8_names_byte_and_line(tmp_path):
    raw = LS_CONLL.encode().replace(b"Aspirin", b"Asp\xefrin")
    with pytest.raises(ReportLensError, match=r"byte \d+ \(line 8\)"):
        parse_export(write(tmp_path, raw, "bad.conll"))


def test_tags_to_spans_never_crosses_a_sentence():
    text, offsets, tags, breaks = rebuild([[("a", "B-X"), ("b", "I-X")], [("c", "I-X")]])
    spans, orphans = tags_to_spans(offsets, tags, breaks)
    assert text == "a b\nc" and spans == [(0, 3, "X"), (4, 5, "X")] and orphans == [(4, 5, "X")]
    assert parse_tag("O") is None and parse_tag("S-DRUG") == ("S", "DRUG") and parse_tag("DRUG") == ("I", "DRUG")


# ---------------------------------------------------------------- streaming


def test_large_export_streams_lazily(tmp_path):
    n = 3000
    items = [task([region(0, 10, "DRUG", "Metoprolol")], task_id=i) for i in range(n)]
    report = ParseReport()
    count = sum(1 for t in iter_tasks(write(tmp_path, items), CONFIG, report) if t.annotations[0].spans)
    assert count == n and report.tasks_seen == n and report.spans_seen == n and not report.issues


def test_json_min_region_fields_other_than_labels(tmp_path):
    row = min_row(
        label=[{"start": 0, "end": 10, "text": "Metoprolol", "labels": ["DRUG"]}, {"start": 11, "end": 16}],
        dialogue=[{"start": "2", "end": "4", "paragraphlabels": ["Important"]}],
        urgency={"taxonomy": [["routine"]]},
    )
    tasks, report = parse_export(write(tmp_path, [row]), CONFIG)
    ann = tasks[0].annotations[0]
    assert ann.spans == (Span(0, 10, "DRUG"),) and ann.choices == ("routine",)
    assert "Task 31" in only(report, "missing_label").message
    assert "dialogue regions ×1" in only(report, "ignored_results").message


def test_bad_annotation_entries_are_reported(tmp_path):
    item = task([region(0, 10, "DRUG")])
    item["annotations"].append("not an annotation")
    item["predictions"] = [{"result": None, "model_version": "v1"}]
    tasks, report = parse_export(write(tmp_path, [item]), CONFIG)
    human, model = tasks[0].annotations
    assert human.spans == (Span(0, 10, "DRUG"),) and (model.model_version, model.spans) == ("v1", ())
    assert "Task 812: annotation #2" in only(report, "bad_annotation").message
