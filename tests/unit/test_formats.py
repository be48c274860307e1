"""The format registry (core/formats/registry.py), the Label Studio write -> read round trip, and brat."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.formats import labelstudio, registry
from core.formats.labelconfig import LabelConfig
from core.formats.registry import FORMATS, detect, parse_export, upload_types
from core.formats.report import ParseReport
from core.types import Annotation, ParsedTask, ReportLensError, Span
from tests.shared_data import shared

# ---------------------------------------------------------------- registry


def test_registry_lists_every_format_with_its_upload_types():
    assert [f.name for f in FORMATS] == ["brat", "dicom", "json-min", "json", "conll"]
    assert set(upload_types()) == {"json", "conll", "txt", "dcm", "dicom", "zip", "ann"}
    for spec in FORMATS:
        assert spec.title and spec.description and spec.extensions
        module = spec._module()
        assert callable(module.sniff) and callable(module.read)
    assert registry.by_name("json").write is labelstudio.write
    assert registry.by_name("conll").write is None
    with pytest.raises(ReportLensError, match="Unknown export format 'csv'; choose one of brat, dicom"):
        registry.by_name("csv")


@pytest.mark.parametrize("content, found", [
    ('"just a string"', "a string"), ("42", "a number"), ("-3.5e2", "a number"), ("null", "null"),
    ("true", "a boolean"), ('  "two words here"\n', "a string"),
])
def test_a_json_scalar_is_refused_as_not_label_studio_tasks(tmp_path, content, found):
    """Regression: '"just a string"' in a .json file used to import as a one-token CoNLL document."""
    path = tmp_path / "export.json"
    path.write_text(content, encoding="utf-8")
    assert detect(path).name == "json"
    with pytest.raises(ReportLensError, match=f"export.json holds {found}, not Label Studio tasks. Expected a Label"):
        parse_export(path)


def test_text_that_is_not_one_json_value_is_still_conll(tmp_path):
    path = tmp_path / "r.conll"
    path.write_text('"quoted" -X- _ B-DRUG\n42 -X- _ O\n', encoding="utf-8")
    assert detect(path).name == "conll"
    tasks, _ = parse_export(path)
    assert tasks[0].text == '"quoted" 42'


def test_unknown_content_names_every_format(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hello\n", encoding="utf-8")
    with pytest.raises(ReportLensError, match="Cannot tell the format of x.txt.*brat.*DICOM SR.*JSON-MIN.*CONLL2003"):
        detect(path)


# ---------------------------------------------------------------- Label Studio: write -> read


@st.composite
def tasks(draw):
    text = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60)
                .filter(str.strip))
    spans = draw(st.lists(st.tuples(st.integers(0, len(text) - 1), st.integers(1, len(text)),
                                    st.sampled_from(["DRUG", "DOSE", "HR"])), max_size=5))
    spans = list(dict.fromkeys(Span(s, e, lab) for s, e, lab in spans if s < e))
    choices = tuple(dict.fromkeys(draw(st.lists(st.sampled_from(["urgent", "routine"]), max_size=2))))
    human = Annotation(source="human", spans=tuple(spans), choices=choices,
                       external_id=draw(st.none() | st.from_regex(r"[0-9]{1,4}", fullmatch=True)),
                       author=draw(st.none() | st.just("ann@example.org")), created_at="2024-02-01T00:00:00Z",
                       ground_truth=draw(st.booleans()), cancelled=draw(st.booleans()))
    scores = tuple(draw(st.none() | st.floats(0, 1).map(lambda x: round(x, 4))) for _ in spans)
    model = Annotation(source="model", spans=tuple(spans[::-1]), span_scores=scores[::-1],
                       model_version=draw(st.none() | st.just("reportlens-1-v2")),
                       score=draw(st.none() | st.floats(0, 1).map(lambda x: round(x, 4))))
    annotations = draw(st.sampled_from([(), (human,), (model,), (human, model)]))
    meta = draw(st.dictionaries(st.sampled_from(["ward", "n", "flag", "nested"]),
                                st.text(max_size=5) | st.integers(-5, 5) | st.booleans() | st.just({"a": [1]}),
                                max_size=3))
    return ParsedTask(text=text, task_id=draw(st.none() | st.integers(1, 10**6)), meta=meta,
                      annotations=annotations)


def _read_back(rows: list[dict], tmp: Path, config: LabelConfig | None) -> tuple[list[ParsedTask], ParseReport]:
    path = tmp / "written.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    report = ParseReport()
    return list(labelstudio.read(path, config, report)), report


@settings(max_examples=60, deadline=None)
@given(st.lists(tasks(), min_size=1, max_size=4))
def test_label_studio_write_then_read_gives_the_tasks_back(tmp_path_factory, written):
    config = LabelConfig(text_field="report", span_labels=("DOSE", "DRUG", "HR"), choice_labels=("routine", "urgent"),
                         span_from_names=("ner",), choice_from_names=("urgency",), to_name="report")
    back, report = _read_back(labelstudio.write(written, config), tmp_path_factory.mktemp("rt"), config)
    assert not report.errors and not report.warnings
    assert len(back) == len(written)
    for original, got in zip(written, back, strict=True):
        assert (got.text, got.task_id, got.meta) == (original.text, original.task_id, original.meta)
        assert got.annotations == original.annotations


def test_write_names_fields_from_the_config_and_refuses_a_clashing_meta_field():
    task = ParsedTask(text="Sinus rhythm.", task_id=3, annotations=(
        Annotation(source="model", spans=(Span(0, 5, "RHYTHM"),), span_scores=(0.9,), model_version="v1"),))
    (row,) = labelstudio.write([task], LabelConfig(text_field="report", span_from_names=("ner",), to_name="doc"))
    (result,) = row["predictions"][0]["result"]
    assert row["data"] == {"report": "Sinus rhythm."} and row["id"] == 3 and row["annotations"] == []
    assert (result["from_name"], result["to_name"], result["score"]) == ("ner", "doc", 0.9)
    assert result["value"] == {"start": 0, "end": 5, "text": "Sinus", "labels": ["RHYTHM"]}
    with pytest.raises(ReportLensError, match="Task 3: its metadata has a field 'text'"):
        labelstudio.write([ParsedTask(text="x", task_id=3, meta={"text": "y"})])


# ---------------------------------------------------------------- brat


def _pair(folder: Path, stem: str, text: str, ann: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.txt").write_bytes(text.encode("utf-8"))
    (folder / f"{stem}.ann").write_text(ann, encoding="utf-8")


def test_brat_folder_on_real_maccrobat_pairs(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for stem in ("15939911", "16778410"):
        for suffix in (".txt", ".ann"):
            shutil.copy(shared("maccrobat2020", stem + suffix), folder)
    assert detect(folder).name == "brat"
    tasks, report = parse_export(folder)
    assert [t.source_name for t in tasks] == ["15939911.txt", "16778410.txt"]
    first = tasks[0]
    assert first.text.startswith("CASE: A 28-year-old previously healthy man")
    assert Span(8, 19, "Age") in first.annotations[0].spans and first.text[8:19] == "28-year-old"
    assert not report.errors and report.format == "brat"
    assert "Age" in report.config.span_labels and report.tasks_seen == 2


def test_brat_zip_with_a_subfolder_and_an_ann_without_its_txt(tmp_path):
    folder = tmp_path / "src"
    _pair(folder, "a", "Aspirin 100 mg.", "T1\tDRUG 0 7\tAspirin\nT2\tDOSE 8 14\t100 mg\nR1\tHAS Arg1:T1 Arg2:T2\n")
    (folder / "lonely.ann").write_text("T1\tDRUG 0 3\tfoo\n", encoding="utf-8")
    (folder / "notes.txt").write_text("Unlabelled report.", encoding="utf-8")
    archive = tmp_path / "brat.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"batch/{p.name}")
    assert detect(archive).name == "brat"
    tasks, report = parse_export(archive)
    assert [t.text for t in tasks] == ["Aspirin 100 mg.", "Unlabelled report."]
    assert tasks[0].annotations[0].spans == (Span(0, 7, "DRUG"), Span(8, 14, "DOSE"))
    assert tasks[1].annotations == ()  # no .ann: not labelled (an empty .ann would be "labelled, no entities")
    (missing,) = report.errors
    assert missing.code == "brat_missing_text" and missing.task == "File batch/lonely.ann"
    assert "has no lonely.txt beside it" in missing.message and "Add the .txt" in missing.message
    assert {"brat_unannotated", "ignored_results"} <= set(report.codes())
    ignored = next(i for i in report.issues if i.code == "ignored_results")
    assert "Ignored 1 results" in ignored.message and "(relation ×1) in a.ann" in ignored.message


def test_brat_mismatched_offsets_name_file_line_and_fix(tmp_path):
    folder = tmp_path / "c"
    _pair(folder, "r", "Heart rate 72 bpm.\r\nNo ST elevation.", "T1\tHR 11 17\t72 bpm\nT2\tFINDING 21 25\tnope\n"
          "T3\tFINDING 30 99\tST\n")
    tasks, report = parse_export(folder)
    assert tasks[0].text[11:17] == "72 bpm" and "\r\n" in tasks[0].text  # offsets count the file as stored
    assert tasks[0].annotations[0].spans == (Span(11, 17, "HR"),)
    mismatch = next(i for i in report.errors if i.code == "offset_mismatch")
    assert mismatch.message.startswith("r.ann line 2: span (21, 25, 'FINDING') text 'nope' does not match")
    assert "Check that the .ann belongs to this .txt" in mismatch.message and mismatch.task == "File r.txt"
    outside = next(i for i in report.errors if i.code == "offset_out_of_range")
    assert outside.message.startswith("r.ann line 3:")


def test_brat_line_problems_use_the_shared_codes(tmp_path):
    ann = ("T1\tDRUG 0 7\tAspirin\nT2 broken\nT3\tDOSE 8 x\t100\nT4\tDOSE 9 9\t\n"
           "T5\tDOSE 8 11;12 14\t100 mg\n")
    _pair(tmp_path / "c", "r", "Aspirin 100 mg.", ann)
    tasks, report = parse_export(tmp_path / "c")
    assert tasks[0].annotations[0].spans == (Span(0, 7, "DRUG"), Span(8, 11, "DOSE"), Span(12, 14, "DOSE"))
    by_code = {str(i.code): i for i in report.issues}
    assert by_code["bad_line"].level == "error" and by_code["bad_line"].message.startswith("r.ann line 2: cannot read")
    assert by_code["offset_not_integer"].message.startswith("r.ann line 3: span ('8', 'x', 'DOSE')")
    assert by_code["empty_span"].message.startswith("r.ann line 4: span (9, 9, 'DOSE') is empty")
    assert by_code["discontinuous"].level == "warning" and "split into 2 spans" in by_code["discontinuous"].message
    assert all(i.task == "File r.txt" for i in report.issues if i.level != "info")


def test_conll_one_column_line_is_a_bad_line_warning(tmp_path):
    path = tmp_path / "x.conll"
    path.write_text("-DOCSTART- -X- O O\n\nAspirin -X- _ B-DRUG\nstray\n", encoding="utf-8")
    tasks, report = parse_export(path)
    (issue,) = [i for i in report.issues if i.code == "bad_line"]
    assert issue.level == "warning" and issue.message.startswith("Line 4: cannot read 'stray'")
    assert "read it as an untagged token" in issue.message and tasks[0].text == "Aspirin stray"


def test_a_single_ann_without_its_txt_raises_with_how_to_fix(tmp_path):
    ann = tmp_path / "report.ann"
    ann.write_text("T1\tDRUG 0 3\tfoo\n", encoding="utf-8")
    assert detect(ann).name == "brat"
    with pytest.raises(ReportLensError, match="report.ann has no report.txt beside it.*upload both files"):
        parse_export(ann)
    (tmp_path / "report.txt").write_text("foo bar", encoding="utf-8")
    tasks, _ = parse_export(tmp_path / "report.txt")
    assert tasks[0].annotations[0].spans == (Span(0, 3, "DRUG"),)


def test_brat_labels_are_checked_against_a_config(tmp_path):
    _pair(tmp_path / "c", "r", "Aspirin 100 mg.", "T1\tDRUG 0 7\tAspirin\nT2\tROUTE 8 11\t100\n")
    tasks, report = parse_export(tmp_path / "c", LabelConfig(span_labels=("DRUG",)))
    assert tasks[0].annotations[0].spans == (Span(0, 7, "DRUG"),)
    assert [i.code for i in report.errors] == ["unknown_label"]


def test_brat_text_that_is_not_utf8_skips_that_document(tmp_path):
    _pair(tmp_path / "c", "good", "Aspirin.", "T1\tDRUG 0 7\tAspirin\n")
    (tmp_path / "c" / "bad.txt").write_bytes(b"caf\xe9")
    tasks, report = parse_export(tmp_path / "c")
    assert [t.source_name for t in tasks] == ["good.txt"]
    assert report.errors[0].code == "file_unreadable" and "bad.txt is not UTF-8" in report.errors[0].message
