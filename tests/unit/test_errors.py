"""The issue-code catalogue (core/errors.py): every code documented, formattable and used; no free-string codes;
stored legacy codes still read; docs/issue-codes.md up to date."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import LEGACY_CODES, IssueCode, catalogue_markdown
from core.formats.report import ParseReport
from core.types import Issue
from db.summary import ImportSummary

ROOT = Path(__file__).resolve().parents[2]
LEVELS = ("error", "warning", "info")
RESERVED = {"span", "snippet", "level"}  # keyword arguments of Issue.of, never template fields


def sources() -> list[Path]:
    skip = {".venv", "node_modules", "data", "static", ".git"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


@pytest.mark.parametrize("code", list(IssueCode), ids=str)
def test_every_code_is_documented_and_its_template_formats(code: IssueCode) -> None:
    assert code.level in LEVELS
    assert code.doc.strip() and code.doc.rstrip().endswith(".") and "\n" not in code.doc
    assert code.template.strip()
    assert not RESERVED & set(code.fields), f"{code.name}: template uses a reserved name"
    sample = {name: f"<{name}>" for name in code.fields}
    message = code.msg(**sample)
    assert "{" not in message and "}" not in message
    for name in code.fields:
        assert f"<{name}>" in message


def test_values_are_unique_snake_case_and_match_the_names() -> None:
    values = [c.value for c in IssueCode]
    assert len(values) == len(set(values))
    for code in IssueCode:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code.value) and code.name == code.value.upper()


def test_a_missing_field_says_which() -> None:
    with pytest.raises(TypeError, match="needs the field 'field'"):
        IssueCode.EMPTY_TEXT.msg(task="Task 3")


def test_every_code_is_used_outside_the_catalogue() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources()
                     if p != ROOT / "core" / "errors.py" and "tests" not in p.relative_to(ROOT).parts)
    used = set(re.findall(r"IssueCode\.([A-Z_]+)\b", text))
    assert {c.name for c in IssueCode} - used == set()


def _code_argument(call: ast.Call) -> ast.expr | None:
    """The code argument of ``Issue(level, code, ...)``, ``Issue.of(code, ...)`` or ``report.note(code, ...)``."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    keyword = next((k.value for k in call.keywords if k.arg == "code"), None)
    if name == "Issue":
        return call.args[1] if len(call.args) > 1 else keyword
    if name in ("of", "note") and (name == "note" or getattr(func.value, "id", None) == "Issue"):  # type: ignore[union-attr]
        return call.args[0] if call.args else keyword
    return None


def test_no_issue_is_built_with_a_plain_string_code() -> None:
    found = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                arg = _code_argument(node)
                if isinstance(arg, ast.Constant | ast.JoinedStr):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_scan_would_catch_a_string_code() -> None:
    call = ast.parse('Issue("error", "bad_line", "m")').body[0].value  # type: ignore[attr-defined]
    note = ast.parse('ctx.report.note(f"x_{kind}", n=1)').body[0].value  # type: ignore[attr-defined]
    assert isinstance(_code_argument(call), ast.Constant) and isinstance(_code_argument(note), ast.JoinedStr)


def test_issue_of_uses_the_default_level_and_the_template() -> None:
    issue = Issue.of(IssueCode.EMPTY_TEXT, task="Task 3", field="text")
    assert issue.level == "error" and issue.code is IssueCode.EMPTY_TEXT and issue.task == "Task 3"
    assert issue.message.startswith("Task 3: the text in data['text'] is empty; task skipped.")
    warned = Issue.of(IssueCode.BAD_LINE, level="warning", where="Line 4", line="x", expected="'a b'", outcome="kept")
    assert warned.level == "warning"


def test_stored_json_keeps_the_string_value_and_reads_back() -> None:
    issue = Issue.of(IssueCode.OFFSET_OUT_OF_RANGE, task="Task 1", span=(3, 50, "X"), where="Task 1", start=3,
                     end=50, label="X", length=10, fix="Fix it.")
    stored = issue.to_dict()
    assert type(stored["code"]) is str and stored["code"] == "offset_out_of_range"
    assert Issue.from_dict(stored) == issue


@pytest.mark.parametrize(("old", "new"), sorted(LEGACY_CODES.items()))
def test_merged_legacy_codes_read_as_their_new_member(old: str, new: IssueCode) -> None:
    assert old not in {c.value for c in IssueCode}
    assert IssueCode(old) is new and IssueCode.lookup(old) is new
    read = Issue.from_dict({"level": "error", "code": old, "message": "m"})
    assert read.code is new


def test_an_old_summary_with_legacy_and_unknown_codes_still_reads() -> None:
    old = {"project": "p", "skipped": [{"level": "error", "code": "span_out_of_range", "message": "a", "task": "T"},
                                       {"level": "error", "code": "retired_code", "message": "b"}],
           "warnings": [{"level": "warning", "code": "conll_bad_line", "message": "c"}]}
    summary = ImportSummary.from_dict(old)
    assert [i.code for i in summary.issues] == [IssueCode.OFFSET_OUT_OF_RANGE, "retired_code", IssueCode.BAD_LINE]
    assert summary.to_dict()["skipped"][1]["code"] == "retired_code"


def test_report_counts_codes_as_their_string_values() -> None:
    report = ParseReport()
    report.note(IssueCode.NO_TASKS)
    assert report.codes() == {"no_tasks": 1} and report.warnings[0].message.startswith("The export holds no tasks")


def test_docs_table_is_up_to_date() -> None:
    doc = ROOT / "docs" / "issue-codes.md"
    assert doc.read_text(encoding="utf-8") == catalogue_markdown(), "run: python scripts/issue_codes.py"
    for code in IssueCode:
        assert f"| `{code.value}` | {code.level} |" in catalogue_markdown()


def test_the_script_checks_the_committed_file() -> None:
    out = subprocess.run([sys.executable, "scripts/issue_codes.py", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
