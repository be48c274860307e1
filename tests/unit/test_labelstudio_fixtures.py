"""Label Studio import on the real, public fixtures under ../shared/data/label-studio-fixtures (Apache-2.0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.formats.labelconfig import parse_label_config
from core.formats.registry import detect, parse_export
from core.types import ReportLensError, Span

SHARED_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FIXTURES = SHARED_DATA_DIR / "label-studio-fixtures"
FRONTEND = FIXTURES / "label-studio-frontend" / "examples"
SAMPLES = FIXTURES / "label-studio" / "label_studio" / "tests" / "test_suites" / "samples"
SDK_DATA = FIXTURES / "label-studio-sdk" / "tests" / "custom" / "converter" / "data"


@pytest.fixture(scope="module")
def SHARED_DATA() -> Path:  # noqa: N802 - the name other tests use for the shared data folder
    if not FIXTURES.is_dir():
        pytest.skip(f"shared Label Studio fixtures not found at {FIXTURES} (checkout without ../shared/data)")
    return SHARED_DATA_DIR


def config_of(example: str):
    return parse_label_config((FRONTEND / example / "config.xml").read_text(encoding="utf-8"))


def test_rich_text_plain_mismatching_offsets_are_reported(SHARED_DATA):
    path = FRONTEND / "rich_text_plain" / "annotations" / "1.json"
    tasks, report = parse_export(path, config_of("rich_text_plain"))
    (task,) = tasks
    assert task.task_id == 1 and task.text.startswith("Donald Trump") and task.annotations[0].spans == ()
    mismatch = next(i for i in report.issues if i.code == "offset_mismatch")
    assert mismatch.level == "error" and mismatch.task == "Task 1" and mismatch.span == (343, 354, "Date")
    assert "'February 22'" in mismatch.message and "' supporters'" in mismatch.message
    unknown = next(i for i in report.issues if i.code == "unknown_label")
    assert "LOC, MISC, ORG, PER" in unknown.message
    assert any(i.code == "single_task" for i in report.issues)


def test_named_entity_annotation_and_prediction_match_their_text(SHARED_DATA):
    cfg = config_of("named_entity")
    tasks, report = parse_export(FRONTEND / "named_entity" / "annotations" / "1.json", cfg)
    (span,) = tasks[0].annotations[0].spans
    assert span == Span(343, 354, "Date") and tasks[0].text[343:354] == "February 22"
    preds, _ = parse_export(FRONTEND / "named_entity" / "tasks.json", cfg)
    pred = preds[0].annotations[0]
    assert (pred.source, pred.model_version, pred.spans) == ("model", "model 1", (span,))
    assert not report.errors and not report.warnings


def test_sentiment_tasks_with_config_read_review_text_and_predictions(SHARED_DATA):
    cfg = config_of("sentiment_analysis")
    assert cfg.text_field == "reviewText" and cfg.choice_labels == ("Negative", "Neutral", "Positive")
    tasks, report = parse_export(FRONTEND / "sentiment_analysis" / "tasks.json", cfg)
    assert len(tasks) == report.tasks_seen > 1 and not report.errors
    assert tasks[0].annotations[0].choices == ("Positive",) and "reviewerName" in tasks[0].meta
    files = sorted((FRONTEND / "sentiment_analysis" / "annotations").glob("*.json"))
    annotated = [parse_export(p, cfg)[0][0] for p in files]
    assert [t.annotations[0].choices for t in annotated] == [("Negative",), ("Negative",), ("Neutral",), ("Neutral",)]


def test_sentiment_without_config_names_available_fields(SHARED_DATA):
    tasks, report = parse_export(FRONTEND / "sentiment_analysis" / "annotations" / "0.json")
    issue = next(i for i in report.issues if i.code == "missing_text_field")
    assert tasks == [] and "reviewText" in issue.message and issue.task == "Task 1"


def test_taxonomy_paths_become_choices(SHARED_DATA):
    cfg = config_of("taxonomy")
    assert {"One", "Three", "Sub"} <= set(cfg.choice_labels) and cfg.choice_from_names == ("ch", "sentiment", "tax")
    tasks, report = parse_export(FRONTEND / "taxonomy" / "annotations" / "0.json", cfg)
    assert tasks[0].annotations[0].choices == ("One", "Sub", "Negative") and not report.errors


def test_choice_aliases_are_the_labels_in_results(SHARED_DATA):
    cfg = config_of("references")
    assert cfg.choice_labels == ("missing-words", "valid")
    tasks, report = parse_export(FRONTEND / "references" / "tasks.json", cfg)
    assert tasks[0].annotations[0].choices == ("valid",) and not report.errors


def test_nested_choices_config_keeps_document_choices_only(SHARED_DATA):
    cfg = parse_label_config((FRONTEND / "nested_choices" / "config-complicated.xml").read_text(encoding="utf-8"))
    assert cfg.choice_from_names == ("sentiment",)  # gender, currency, sentiment2 are per-region
    assert "Person" in cfg.span_labels and cfg.to_name == "my_text"


def test_classification_mixed_ignores_other_controls_in_one_note(SHARED_DATA, tmp_path):
    tasks, report = parse_export(FRONTEND / "classification_mixed" / "annotations" / "1.json")
    assert tasks == [] and "image" in report.errors[0].message  # its only data field is an image URL
    # its config shows a fixed text; give the task that text to read the real results
    item = json.loads((FRONTEND / "classification_mixed" / "annotations" / "1.json").read_text(encoding="utf-8"))
    item["data"] = {"text": "Just some random text to label"}
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([item]), encoding="utf-8")
    tasks, report = parse_export(path)
    assert tasks[0].annotations[0].choices == ("Choice 1", "Choice 2.1")
    note = next(i for i in report.issues if i.code == "ignored_results")
    assert "textarea ×1" in note.message and "rectanglelabels ×2" in note.message
    assert sum(i.code == "ignored_results" for i in report.issues) == 1


@pytest.mark.parametrize(
    ("relative", "match"),
    [
        ("label-studio-frontend/examples/classification_mixed/config.xml", "not a data field"),
        ("label-studio-frontend/examples/phrases/config.xml", "no <Text"),
        ("label-studio-converter/tests/data/test_export_json_min/label_config.xml", "no <Text"),
    ],
)
def test_non_text_configs_are_refused(SHARED_DATA, relative, match):
    with pytest.raises(ReportLensError, match=match):
        parse_label_config((FIXTURES / relative).read_text(encoding="utf-8"))


def test_relation_extraction_template_config(SHARED_DATA):
    yml = (
        FIXTURES / "label-studio/label_studio/annotation_templates/natural-language-processing"
        "/relation-extraction/config.yml"
    ).read_text(encoding="utf-8")
    xml = yml.split("config: '", 1)[1].rsplit("'", 1)[0]
    cfg = parse_label_config(xml)
    assert cfg.span_labels == ("Datetime", "Organization", "Person") and cfg.text_field == "text"
    example = json.loads(xml.split("<!--", 1)[1].split("-->", 1)[0])
    assert [r["type"] for r in example["completions"][0]["result"]].count("relation") == 3


def test_relation_extraction_example_with_completions(SHARED_DATA, tmp_path):
    yml = (
        FIXTURES / "label-studio/label_studio/annotation_templates/natural-language-processing"
        "/relation-extraction/config.yml"
    ).read_text(encoding="utf-8")
    xml = yml.split("config: '", 1)[1].rsplit("'", 1)[0]
    example = json.loads(xml.split("<!--", 1)[1].split("-->", 1)[0])
    path = tmp_path / "export.json"
    path.write_text(json.dumps([example]), encoding="utf-8")
    tasks, report = parse_export(path, parse_label_config(xml))
    spans = tasks[0].annotations[0].spans
    assert [tasks[0].text[s.start : s.end] for s in spans] == ["Microsoft", "Bill Gates", "Paul Allen", "April 4, 1975"]
    assert "relation ×3" in next(i for i in report.issues if i.code == "ignored_results").message


def test_full_exports_with_users_reviews_and_predictions(SHARED_DATA):
    tasks, report = parse_export(SDK_DATA / "test_export_csv" / "csv_test.json")
    assert [t.task_id for t in tasks] == [1, 2] and report.format == "json"
    human, model = tasks[0].annotations
    assert (human.author, human.external_id) == ("hakan@heartex.com", "7")
    assert human.created_at == "2022-10-31T21:19:19.131290Z"
    assert (model.source, model.model_version, model.score) == ("model", "model 0", pytest.approx(0.7212843313260696))
    assert "rectanglelabels ×5" in next(i for i in report.issues if i.code == "ignored_results").message
    assert set(tasks[0].meta) == {"audio", "image"}


def test_unannotated_task_and_history(SHARED_DATA):
    tasks, _ = parse_export(SDK_DATA / "test_export_csv" / "csv_test_colliding_keys_mixed.json")
    assert [len(t.annotations) for t in tasks] == [1, 0] and tasks[0].annotations[0].choices == ("positive",)
    history, _ = parse_export(SDK_DATA / "test_export_csv" / "csv_test_history.json")
    assert history[0].annotations[0].author == "sergei@heartex.test"


def test_text_with_two_predictions(SHARED_DATA):
    tasks, report = parse_export(SAMPLES / "text_with_2_predictions.json")
    assert [(a.model_version, a.choices) for a in tasks[0].annotations] == [
        ("model_version_A", ("class_A",)),
        ("model_version_B", ("class_B",)),
    ]
    assert report.config.choice_labels == ("class_A", "class_B") and report.config.inferred


def test_previous_export_single_task_object(SHARED_DATA):
    tasks, report = parse_export(SAMPLES / "previous_export.json")
    assert tasks == [] and {"single_task", "missing_text_field"} <= set(report.codes())


def test_image_and_chat_exports_have_no_text(SHARED_DATA):
    for path in (SDK_DATA / "test_export_json_min" / "data.json", SDK_DATA / "test_export_json_min" / "chat_data.json"):
        assert detect(path).name == "json"
        tasks, report = parse_export(path)
        assert report.tasks_seen == 1
        if tasks:  # the chat scenario prompt is the only text field
            assert tasks[0].text.startswith("Crisis Check-In")


def test_json_min_made_from_real_task(SHARED_DATA, tmp_path):
    """A JSON-MIN row shaped like label-studio-converter's output for the named_entity example."""
    source = json.loads((FRONTEND / "named_entity" / "annotations" / "1.json").read_text(encoding="utf-8"))
    value = source["annotations"][0]["result"][0]["value"]
    row = {
        "text": source["data"]["text"],
        "id": 1,
        "ner": [value],
        "annotator": 1,
        "annotation_id": 1001,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "lead_time": 3.5,
    }
    path = tmp_path / "min.json"
    path.write_text(json.dumps([row]), encoding="utf-8")
    assert detect(path).name == "json-min"
    tasks, report = parse_export(path, config_of("named_entity"))
    ann = tasks[0].annotations[0]
    assert ann.spans == (Span(343, 354, "Date"),) and ann.author == "1" and ann.external_id == "1001"
    assert not report.errors and report.format == "json-min"


def test_config_round_trip_on_real_configs(SHARED_DATA):
    for example in ("named_entity", "rich_text_plain", "sentiment_analysis", "taxonomy", "references"):
        cfg = config_of(example)
        assert type(cfg).from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
