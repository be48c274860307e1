"""Hostile and broken input (issue 13): each case reproduced, named after it, and refused or read with a message
that says what, where and how to fix; limits are named settings (core/limits.py, README "Limits")."""

from __future__ import annotations

import gzip
import json
import os
import re
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

import cli
from core import limits
from core.formats.jsonguard import JsonGuard
from core.formats.registry import detect, parse_export
from core.formats.report import CHUNK
from core.rules import extract_ecg
from core.spancheck import check_region
from core.types import ReportLensError
from services.extract import extract_text

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, content: str | bytes, name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def _import(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, url: str, *argv: str) -> tuple[int, str,
                                                                                                            str]:
    """``python cli.py import ...`` in this process: an uncaught exception fails the test as a traceback would."""
    monkeypatch.setenv("REPORTLENS_DATABASE_URL", url)
    rc = cli.main(["import", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


TASK = {"id": 1, "data": {"text": "Sinus rhythm."},
        "annotations": [{"result": [{"type": "labels", "from_name": "label", "to_name": "text",
                                     "value": {"start": 0, "end": 5, "text": "Sinus", "labels": ["RHYTHM"]}}]}]}


# ---------------------------------------------------------------- a .json that parses is never another format


def test_json_that_parses_is_never_read_as_conll_or_brat(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps("Aspirin -X- _ B-DRUG"), "tokens.conll")
    assert detect(path).name == "json"
    with pytest.raises(ReportLensError, match="holds a string, not Label Studio tasks"):
        parse_export(path)
    assert detect(_write(tmp_path, json.dumps([TASK]), "result.txt")).name == "json"


# ---------------------------------------------------------------- deeply nested JSON


def test_deeply_nested_json_is_refused_while_streaming_in_little_memory(tmp_path: Path) -> None:
    path = _write(tmp_path, "[" * 100_000 + "]" * 100_000)  # 200 KB: took the importer to 21.6 GB before
    tracemalloc.start()
    try:
        with pytest.raises(ReportLensError, match=r"more than 64 levels deep \(at byte 64, line 1\).*"
                                                  r"REPORTLENS_MAX_JSON_DEPTH"):
            parse_export(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_deep_nesting_inside_a_tasks_data_is_refused_before_the_item_is_built(tmp_path: Path) -> None:
    deep = "[" * 3000 + "]" * 3000
    path = _write(tmp_path, '[{"id": 1, "data": {"text": "Sinus rhythm."}}, {"id": 2, "data": {"text": "x", '
                            f'"meta": {deep}}}}}]')
    with pytest.raises(ReportLensError, match="line 1.*a task's data holds a deeply nested value"):
        parse_export(path)


def test_nesting_is_counted_across_chunks_of_many_tasks(tmp_path: Path) -> None:
    tasks = [dict(TASK, id=k) for k in range(2000)]  # hundreds of brackets in every 64 KB read, depth 7
    ok = json.dumps(tasks)
    assert len(parse_export(_write(tmp_path, ok))[0]) == 2000
    deep = ok[:-1] + ', {"data": {"text": "[[[[", "meta": ' + "[" * 70 + "]" * 70 + "}}]"
    at = len(ok[:-1] + ', {"data": {"text": "[[[[", "meta": ') + 61  # after list, task and data: the 65th level
    with pytest.raises(ReportLensError, match=f"more than 64 levels deep \\(at byte {at:,}, line 1\\)"):
        parse_export(_write(tmp_path, deep, "deep.json"))


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    text = "[[" * 5000 + ' \\"quoted [{ \\\\' + "}]" * 5000
    path = _write(tmp_path, '[{"id": 1, "data": {"text": "' + text + '"}}]')
    tasks, _ = parse_export(path)
    assert tasks[0].text == json.loads('"' + text + '"')


def test_nesting_depth_is_a_named_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, json.dumps([TASK]))  # list > task > annotations > annotation > result > region > value
    assert len(parse_export(path)[0]) == 1
    monkeypatch.setenv("REPORTLENS_MAX_JSON_DEPTH", "5")
    with pytest.raises(ReportLensError, match=r"more than 5 levels.*the limit is 5 levels"):
        parse_export(path)
    monkeypatch.setenv("REPORTLENS_MAX_JSON_DEPTH", "many")
    with pytest.raises(ReportLensError, match="REPORTLENS_MAX_JSON_DEPTH='many' is not a whole number"):
        parse_export(path)


# ---------------------------------------------------------------- lone surrogate escapes


@pytest.mark.parametrize("escape", ["\\udc00", "\\ud800", "\\uDBFF"])
def test_lone_surrogate_escape_is_read_as_replacement_character_with_a_warning(tmp_path: Path, escape: str) -> None:
    raw = ('[{"id": 1, "data": {"text": "Heart ' + escape + ' rate 78 bpm"}, "annotations": [{"result": [{"type": '
           '"labels", "value": {"start": 13, "end": 15, "text": "78", "labels": ["HR"]}}]}]}]')
    tasks, report = parse_export(_write(tmp_path, raw))
    assert tasks[0].text == "Heart \ufffd rate 78 bpm"
    assert [(s.start, s.end) for s in tasks[0].annotations[0].spans] == [(13, 15)]  # offsets still right
    (issue,) = [i for i in report.issues if i.code == "lone_surrogate"]
    assert issue.level == "warning" and escape in issue.message and "line 1" in issue.message


def test_surrogate_pairs_and_escaped_backslashes_stay_as_they_are(tmp_path: Path) -> None:
    raw = '[{"data": {"text": "a \\ud83d\\ude00 b \\\\udc00 c"}}]'
    tasks, report = parse_export(_write(tmp_path, raw))
    assert tasks[0].text == "a 😀 b \\udc00 c" and not [i for i in report.issues if i.code == "lone_surrogate"]


@pytest.mark.parametrize("shift", range(0, 13))
def test_surrogate_pair_split_across_read_chunks_is_kept(tmp_path: Path, shift: int) -> None:
    prefix = '[{"data": {"text": "'
    pad = "x" * (CHUNK - len(prefix) - shift)
    raw = prefix + pad + '\\ud83d\\ude00"}}]'
    tasks, report = parse_export(_write(tmp_path, raw))
    assert tasks[0].text == pad + "😀" and not report.warnings


def test_json_guard_replaces_escapes_split_across_tiny_reads(tmp_path: Path) -> None:
    path = _write(tmp_path, '["\\udc00", "\\ud83d\\ude00", "\\\\ud800"]' * 3)

    class Raw:  # reads four bytes at a time, so every escape is split
        offset = 0

        def __init__(self) -> None:
            self.data = path.read_bytes()

        def read(self, size: int = 65536) -> bytes:
            out, self.data = self.data[:4], self.data[4:]
            return out

    guard, got = JsonGuard(Raw(), path), b""
    while chunk := guard.read(4):
        got += chunk
    assert got == b'["\\ufffd", "\\ud83d\\ude00", "\\\\ud800"]' * 3
    assert guard.lone_surrogates == 3 and guard.offset == len(got)


# ---------------------------------------------------------------- numbers out of range


def test_task_id_1e300_does_not_crash_the_database_insert(tmp_path: Path, sqlite_url: str,
                                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    path = _write(tmp_path, '[{"id": 1e300, "data": {"text": "Sinus rhythm."}}, {"id": -1e19, "data": {"text": '
                            '"AF."}}, {"id": 9223372036854775807, "data": {"text": "RBBB."}}]')
    rc, out, err = _import(monkeypatch, capsys, sqlite_url, str(path), "--project", "p")
    assert rc == 0, err  # no OverflowError at the insert: the out-of-range ids are refused by the task id rules
    summary = json.loads(out)
    assert summary["documents_added"] == 1  # 2**63-1 is the largest task id
    assert [(i["code"], i["task"]) for i in summary["skipped"]] == [("invalid_task_id", "Item #1"),
                                                                   ("invalid_task_id", "Item #2")]


@pytest.mark.parametrize(("number", "shown"), [("123456789012345678901234567890", "123456789012345678901234567890"),
                                               ("9223372036854775808", "9223372036854775808"),
                                               ("1e309", "1e309"), ("-2.5E400", "-2.5E400")])
def test_number_out_of_range_names_the_number_and_its_line_and_column(tmp_path: Path, number: str,
                                                                      shown: str) -> None:
    path = _write(tmp_path, '[{"id": 1, "data": {"text": "1e999 in a string"}},\n {"id": ' + number
                  + ', "data": {"text": "x"}}]')
    with pytest.raises(ReportLensError, match=rf"at line 2, column 9 .*the number {re.escape(shown)} is out of "
                                              r"range.*a task id must be a whole number from 0 to 2\*\*63-1"):
        parse_export(path)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_gets_its_line_and_column(tmp_path: Path, constant: str) -> None:
    path = _write(tmp_path, '[{"data": {"text": "NaN", "score":\n  ' + constant + "}}]")
    with pytest.raises(ReportLensError, match=rf"at line 2, column 3 .*{constant} is not a JSON value.*null"):
        parse_export(path)


# ---------------------------------------------------------------- extraction and re-anchoring cost


def _long_report(n_chars: int) -> tuple[str, list[str]]:
    pieces = ["Sinus rhythm, heart rate 78 bpm. ", "PR 160 ms, QRS 0.09 s. ", "No atrial fibrillation. ",
              "Possible left axis deviation. ", "Vorhofflimmern, hf 140. ", "心率78次/分。"]
    out: list[str] = []
    while sum(map(len, out)) < n_chars:
        out.append(pieces[len(out) % len(pieces)])
    return "".join(out), out


def test_extraction_of_a_100kb_report_finds_what_each_sentence_finds() -> None:
    text, pieces = _long_report(100_000)
    started = time.perf_counter()
    whole = extract_ecg(text)
    elapsed = time.perf_counter() - started
    expected, offset = [], 0
    for piece in pieces:
        expected += [(e.start + offset, e.end + offset, e.label, e.attrs.get("negated"), e.attrs.get("uncertain"),
                      e.attrs.get("value")) for e in extract_ecg(piece)]
        offset += len(piece)
    got = [(e.start, e.end, e.label, e.attrs.get("negated"), e.attrs.get("uncertain"), e.attrs.get("value"))
           for e in whole]
    assert got == expected and len(got) > 5000
    assert elapsed < 60  # a hang guard only; the timing is bench/extract_bench.py's


def test_extract_input_is_capped_by_a_named_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTLENS_MAX_EXTRACT_CHARS", "1000")
    with pytest.raises(ReportLensError, match=r"2,000 characters.*the limit is 1,000 characters "
                                              r"\(REPORTLENS_MAX_EXTRACT_CHARS raises it\)"):
        extract_text("a" * 2000)
    assert extract_text("Sinus rhythm. " * 50)["n_entities"] == 50


def test_utf16_offsets_of_many_spans_on_a_long_text_are_reanchored() -> None:
    unit = "😀 sinus rhythm, "  # one astral character: JavaScript counts it as two
    text = unit * 20_000
    checked = []
    for k in range(0, 20_000, 10):
        js_start = k * (len(unit) + 1) + 3  # UTF-16 units before the k-th "sinus"
        checked.append(check_region(text, js_start, js_start + 5, "RHYTHM", "sinus", "Task 1"))
    assert all(c.repaired and c.offsets == (k * 10 * len(unit) + 2, k * 10 * len(unit) + 7)
               for k, c in enumerate(checked))
    assert "UTF-16" in checked[-1].issue.message  # type: ignore[union-attr]


# ---------------------------------------------------------------- not an export read as CoNLL


def test_plain_text_report_is_not_imported_as_conll(tmp_path: Path) -> None:
    path = _write(tmp_path, "The patient has sinus rhythm today\nHeart rate is normal\n", "report.txt")
    with pytest.raises(ReportLensError, match=r"report.txt line 1: the last column 'today' .* is not a tag: it has "
                                              r"no B-/I-/E-/S- prefix.*not a CoNLL export"):
        parse_export(path)


@pytest.mark.parametrize(("tag", "why"), [("B-", "no label after 'B-'"), ("X-RATE", "prefix 'X-' is not one of"),
                                          ("RATE", "no B-/I-/E-/S- prefix")])
def test_conll_tag_without_type_or_of_another_scheme_is_refused(tmp_path: Path, tag: str, why: str) -> None:
    path = _write(tmp_path, f"-DOCSTART- -X- O O\n\nAspirin -X- _ B-DRUG\nrate -X- _ {tag}\n", "x.conll")
    with pytest.raises(ReportLensError, match=rf"x.conll line 4: the last column {tag!r}.*{re.escape(why)}"):
        parse_export(path)


# ---------------------------------------------------------------- files that are not exports


def test_config_not_in_utf8_is_a_message_not_a_traceback(tmp_path: Path, sqlite_url: str,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    config = _write(tmp_path, "<View><Text name='t' value='$text'/>é</View>".encode("latin-1"), "config.xml")
    rc, out, err = _import(monkeypatch, capsys, sqlite_url, str(_write(tmp_path, json.dumps([TASK]))),
                           "--project", "p", "--config", str(config))
    assert rc == 1 and not out and "labeling config is not UTF-8 (bad byte at offset" in err


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportLensError, match="The folder empty is empty"):
        detect(tmp_path / "empty")
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    with pytest.raises(ReportLensError, match="The zip archive empty.zip is empty"):
        detect(tmp_path / "empty.zip")


def test_folder_or_zip_holding_a_json_export_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "project-1.json").write_text(json.dumps([TASK]), encoding="utf-8")
    with pytest.raises(ReportLensError, match=r"folder exports holds 1 export file\(s\) \(project-1.json\), not "
                                              r"DICOM SR or brat files; import each export file itself"):
        detect(folder)
    with zipfile.ZipFile(tmp_path / "exports.zip", "w") as zf:
        zf.write(folder / "project-1.json", "project-1.json")
    with pytest.raises(ReportLensError, match="zip archive exports.zip holds 1 export file"):
        detect(tmp_path / "exports.zip")


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_dev_null_is_not_called_a_folder() -> None:
    with pytest.raises(ReportLensError, match="/dev/null is not a regular file or folder .a device, pipe or socket"):
        parse_export("/dev/null")


def test_symlink_loop_is_named_as_such(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys) -> None:
    os.symlink(tmp_path / "b.json", tmp_path / "a.json")
    os.symlink(tmp_path / "a.json", tmp_path / "b.json")
    os.symlink(tmp_path / "gone.json", tmp_path / "dangling.json")
    rc, _, err = _import(monkeypatch, capsys, sqlite_url, str(tmp_path / "a.json"), "--project", "p")
    assert rc == 1 and "a.json is a symbolic link loop" in err
    with pytest.raises(ReportLensError, match="dangling.json is a symbolic link to something that does not exist"):
        detect(tmp_path / "dangling.json")


def test_gzip_file_says_gzip_without_dumping_binary(tmp_path: Path) -> None:
    path = _write(tmp_path, gzip.compress(json.dumps([TASK]).encode()), "export.json.gz")
    with pytest.raises(ReportLensError) as err:
        parse_export(path)
    message = str(err.value)
    assert "export.json.gz is gzip-compressed" in message and "gunzip" in message and message.isprintable()


# ---------------------------------------------------------------- limits on tasks and archives


def test_text_over_the_length_limit_skips_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTLENS_MAX_TEXT_CHARS", "10")
    path = _write(tmp_path, json.dumps([TASK, {"id": 2, "data": {"text": "AF"}}]))
    tasks, report = parse_export(path)
    assert [t.task_id for t in tasks] == [2] and report.tasks_skipped == 1
    (issue,) = [i for i in report.issues if i.code == "limit_exceeded"]
    assert issue.message.startswith("Task 1: the text has 13 characters, over the limit of 10 characters "
                                    "(REPORTLENS_MAX_TEXT_CHARS raises it); task skipped.")


def test_spans_over_the_per_task_limit_skip_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTLENS_MAX_SPANS_PER_TASK", "2")
    def region(start: int, end: int) -> dict:
        return {"type": "labels", "value": {"start": start, "end": end, "labels": ["RHYTHM"]}}

    many = {"id": 3, "data": {"text": "Sinus rhythm."},
            "annotations": [{"result": [region(0, 5)]}, {"result": [region(0, 5), region(6, 12)]}]}
    tasks, report = parse_export(_write(tmp_path, json.dumps([TASK, many])))
    assert [t.task_id for t in tasks] == [1]
    assert "Task 3: its annotations has 3 spans, over the limit of 2 spans (REPORTLENS_MAX_SPANS_PER_TASK" in \
        next(i.message for i in report.issues if i.code == "limit_exceeded")


def test_zip_over_the_member_limit_is_skipped_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTLENS_MAX_ZIP_ENTRIES", "3")
    with zipfile.ZipFile(tmp_path / "brat.zip", "w") as zf:
        for k in range(3):
            zf.writestr(f"r{k}.txt", "Sinus rhythm.")
            zf.writestr(f"r{k}.ann", "T1\tRHYTHM 0 5\tSinus\n")
    tasks, report = parse_export(tmp_path / "brat.zip")
    assert tasks == []
    assert any(i.code == "limit_exceeded" and "6 members, over the limit of 3 members (REPORTLENS_MAX_ZIP_ENTRIES"
               in i.message for i in report.issues)


def test_readme_lists_every_limit() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert limits.readme_table() in readme
