"""Random Label Studio exports (random unicode, lone surrogates, spans, field types, truncated files) through
``cli.py import`` in a subprocess on a real SQLite file: never a traceback, exit code 0 or 1 only, a failed import
stores nothing (no half-write), and importing the same file again never grows the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import count
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
ODD = st.sampled_from(["\ud83d", "\ude00", "😀", "\x00", "\u2028", "\ufeff", "é", "\n", " ", "心率", "\\", '"'])
TEXT = st.lists(st.one_of(st.text(max_size=8), ODD), max_size=12).map("".join)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                   st.floats(allow_nan=False), TEXT)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)
OFFSET = st.one_of(st.integers(min_value=-3, max_value=40), st.floats(allow_nan=False), st.integers(), TEXT, st.none())


@st.composite
def region(draw: st.DrawFn, text: str) -> dict:
    start, end = draw(OFFSET), draw(OFFSET)
    if draw(st.booleans()):  # a plausible region, its text from the task
        start = draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))
        end = draw(st.integers(min_value=start, max_value=len(text) + 2))
    value: dict = {"start": start, "end": end, "labels": draw(st.one_of(st.lists(TEXT, max_size=2), SCALAR))}
    if draw(st.booleans()):
        value["text"] = text[start:end] if isinstance(start, int) and isinstance(end, int) else draw(TEXT)
    return {"type": draw(st.sampled_from(["labels", "choices", "relation", "textarea"])), "from_name": "label",
            "to_name": "text", "value": draw(st.one_of(st.just(value), VALUE))}


@st.composite
def task(draw: st.DrawFn) -> object:
    text = draw(TEXT)
    data = {"text": draw(st.one_of(st.just(text), VALUE))} if draw(st.integers(0, 9)) else draw(VALUE)
    item: dict = {"data": data}
    if draw(st.booleans()):
        item["id"] = draw(st.one_of(st.integers(min_value=-2**64, max_value=2**64), st.floats(allow_nan=False), TEXT))
    results = draw(st.lists(region(text), max_size=4))
    item["annotations"] = draw(st.one_of(st.just([{"result": results, "id": draw(st.integers(0, 5))}]), VALUE))
    return draw(st.one_of(st.just(item), VALUE)) if not draw(st.integers(0, 7)) else item


@st.composite
def export(draw: st.DrawFn) -> bytes:
    tasks = draw(st.lists(task(), max_size=5))
    if draw(st.booleans()):
        raw = json.dumps(tasks).encode("ascii")  # lone surrogates as \\udXXX escapes
    else:
        raw = json.dumps(tasks, ensure_ascii=False).encode("utf-8", "surrogatepass")  # lone ones: bad UTF-8
    cut = draw(st.integers(0, 5))
    if cut == 0:  # cut anywhere (an interrupted download)
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif cut == 1:
        raw = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"  ", b"[" * 200])) + raw
    return raw


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("fuzz")
    env = {**os.environ, "REPORTLENS_DATABASE_URL": f"sqlite:///{tmp / 'fuzz.db'}",
           "REPORTLENS_DATA_DIR": str(tmp / "data")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cli_driver.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def call(argv: list[str]) -> dict:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"argv": argv}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, "the cli driver died"
        return json.loads(line)

    yield call, tmp
    proc.stdin.close()  # type: ignore[union-attr]
    proc.wait(timeout=30)


_names = count()


EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))  # more for a longer hunt; make test runs 25 (~5 s)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=export())
def test_random_exports_never_crash_half_write_or_grow_on_reimport(driver, raw: bytes) -> None:
    call, tmp = driver
    path = tmp / f"export-{next(_names)}.json"
    path.write_bytes(raw)
    project = f"fuzz-{path.stem}"
    before = call(["projects"])["counts"]
    first = call(["import", str(path), "--project", project])
    assert first["traceback"] is None, first["traceback"]
    assert first["rc"] in (0, 1), first
    if first["rc"] == 1:
        assert first["stderr"].startswith("error: ") and first["counts"] == before, first  # nothing stored
        return
    again = call(["import", str(path), "--project", project])
    assert again["traceback"] is None and again["rc"] == 0, again
    assert again["counts"] == first["counts"], (first["counts"], again["counts"])
