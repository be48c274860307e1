"""Import benchmark: a synthetic Label Studio JSON export of N tasks, parsed and stored into a fresh SQLite file.

    python bench/import_bench.py                 # 50,000 tasks, ~300-char reports, ~5 spans each
    python bench/import_bench.py --n 5000 --out bench/out/import-5k.json

The export is generated first (not timed). The import then runs in a child process, which times
``core.formats.registry.iter_tasks`` -> ``db.importer.import_tasks`` (one transaction) and reports its own peak RSS
(``ru_maxrss``), so generating the file does not count; it first times parsing alone (``iter_tasks``, no
database). A second import of the same file (every document unchanged)
is timed too. A third child times ``cli.py convert`` (bundled tokenizer, BIO windows as JSON lines) on the same
export. Prints and writes a JSON result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Each sentence: (piece, label or None) parts; numbers are filled in per report.
ECG = [
    [("Sinus rhythm", "RHYTHM"), (" at ", None), ("{rate} bpm", "MEASUREMENT"), (".", None)],
    [("Atrial fibrillation", "RHYTHM"), (" with rapid ventricular response.", None)],
    [("PR interval ", None), ("{pr} ms", "MEASUREMENT"), (", QRS duration ", None), ("{qrs} ms", "MEASUREMENT"),
     (".", None)],
    [("Left ventricular hypertrophy", "FINDING"), (" with repolarization abnormality.", None)],
    [("No acute ", None), ("ST elevation", "FINDING"), (".", None)],
    [("Right bundle branch block", "FINDING"), (" is present.", None)],
    [("QTc ", None), ("{qtc} ms", "MEASUREMENT"), (", within normal limits.", None)],
    [("T wave inversion", "FINDING"), (" in ", None), ("leads V1-V3", "ANATOMY"), (".", None)],
]
RADIOLOGY = [
    [("CT chest without contrast.", None)],
    [("There is a ", None), ("{size} mm", "SIZE"), (" ", None), ("nodule", "FINDING"), (" in the ", None),
     ("right upper lobe", "ANATOMY"), (".", None)],
    [("No ", None), ("pleural effusion", "FINDING"), (" or ", None), ("pneumothorax", "FINDING"), (".", None)],
    [("Mild ", None), ("cardiomegaly", "FINDING"), (".", None)],
    [("The ", None), ("left lower lobe", "ANATOMY"), (" shows ", None), ("consolidation", "FINDING"),
     (" compatible with pneumonia.", None)],
    [("Degenerative changes of the ", None), ("thoracic spine", "ANATOMY"), (".", None)],
    [("Recommend follow-up CT in ", None), ("{months} months", "DURATION"), (".", None)],
]


def make_report(rng: random.Random, target: int = 300) -> tuple[str, list[tuple[int, int, str]]]:
    pool = ECG if rng.random() < 0.5 else RADIOLOGY
    nums = {"rate": rng.randint(45, 140), "pr": rng.randint(120, 220), "qrs": rng.randint(70, 130),
            "qtc": rng.randint(380, 480), "size": rng.randint(3, 30), "months": rng.choice([3, 6, 12])}
    text, spans = "", []
    while len(text) < target - 40:
        for piece, label in rng.choice(pool):
            piece = piece.format(**nums)
            if label:
                spans.append((len(text), len(text) + len(piece), label))
            text += piece
        text += " "
    text = text.rstrip()
    if len(spans) > 5:
        spans = sorted(rng.sample(spans, 5))
    return text, spans


def region(i: int, start: int, end: int, label: str, text: str, score: float | None = None) -> dict:
    out = {"id": f"r{i}", "from_name": "label", "to_name": "text", "type": "labels",
           "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}
    if score is not None:
        out["score"] = score
    return out


def write_export(path: Path, n: int, seed: int = 13) -> dict:
    """A Label Studio "JSON" export: annotations on every task, a model prediction on every 5th."""
    rng = random.Random(seed)
    n_spans = 0
    with path.open("w", encoding="utf-8") as f:
        f.write("[\n")
        for tid in range(1, n + 1):
            text, spans = make_report(rng)
            n_spans += len(spans)
            stamp = f"2024-{1 + tid % 12:02d}-{1 + tid % 28:02d}T10:{tid % 60:02d}:00.000000Z"
            task = {
                "id": tid,
                "data": {"text": text, "patient_ref": f"P{tid % 997:04d}"},
                "annotations": [{
                    "id": tid, "completed_by": 1 + tid % 3, "was_cancelled": False, "ground_truth": False,
                    "created_at": stamp, "updated_at": stamp, "lead_time": 12.5,
                    "result": [region(k, s, e, lab, text) for k, (s, e, lab) in enumerate(spans)],
                }],
                "predictions": [],
            }
            if tid % 5 == 0:
                task["predictions"] = [{
                    "id": tid, "model_version": "bench-v1", "score": 0.8,
                    "result": [region(k, s, e, lab, text, 0.9) for k, (s, e, lab) in enumerate(spans)],
                }]
            f.write(json.dumps(task, ensure_ascii=False))
            f.write(",\n" if tid < n else "\n")
        f.write("]\n")
    return {"tasks": n, "spans": n_spans, "bytes": path.stat().st_size}


def child(export: str, db_file: str) -> None:
    """Runs in a fresh process: migrate, then parse + import twice; prints one JSON line."""
    from core.formats.registry import iter_tasks
    from core.formats.report import ParseReport
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.migrate import upgrade

    url = f"sqlite:///{db_file}"
    t = time.perf_counter()
    upgrade(url)
    migrate_s = time.perf_counter() - t
    engine = make_engine(url)
    t = time.perf_counter()
    parsed = sum(1 for _ in iter_tasks(export, report=ParseReport()))  # parsing alone, for reference
    parse_s = time.perf_counter() - t
    runs = []
    for _ in range(2):
        report = ParseReport()
        t = time.perf_counter()
        summary = import_tasks(engine, "bench", iter_tasks(export, report=report), report=report,
                               file_name=Path(export).name)
        seconds = time.perf_counter() - t
        runs.append({"seconds": round(seconds, 2), "docs_per_s": round(summary.documents / seconds),
                     "summary": {k: v for k, v in summary.to_dict(max_issues=3).items() if k != "infos"}})
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        runs[-1]["peak_rss_mb_so_far"] = round(rss_mb)
    print(json.dumps({"migrate_s": round(migrate_s, 2), "parse_s": round(parse_s, 2), "parsed": parsed,
                      "first": runs[0], "reimport": runs[1],
                      "db_mb": round(Path(db_file).stat().st_size / 2**20, 1)}))


def child_convert(export: str, out: str) -> None:
    """Runs in a fresh process: ``cli.py convert`` on the export with the bundled tokenizer; prints one JSON line."""
    from services.convert import convert_export
    from training.encoding import load_tokenizer

    t = time.perf_counter()
    load_tokenizer()
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    summary = convert_export(Path(export), Path(out))
    seconds = time.perf_counter() - t
    docs = summary["labeled_documents"]
    print(json.dumps({"tokenizer_load_s": round(load_s, 2), "seconds": round(seconds, 2),
                      "docs_per_s": round(docs / seconds), "documents": docs, "windows": summary["windows"],
                      "tokens": summary["tokens"], "jsonl_mb": round(Path(out).stat().st_size / 2**20, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def _run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000, help="number of tasks (default 50,000)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "import.json"), help="where to write the result")
    ap.add_argument("--child", nargs=2, metavar=("EXPORT", "DB"), help=argparse.SUPPRESS)
    ap.add_argument("--child-convert", nargs=2, metavar=("EXPORT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.child_convert:
        child_convert(*args.child_convert)
        return 0
    with tempfile.TemporaryDirectory(prefix="reportlens-bench-") as tmp:
        export, db_file = Path(tmp) / "export.json", Path(tmp) / "bench.db"
        t = time.perf_counter()
        data = write_export(export, args.n)
        data["generate_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        measured = _run_child("--child", str(export), str(db_file))
        wall = time.perf_counter() - t
        converted = _run_child("--child-convert", str(export), str(Path(tmp) / "bio.jsonl"))
    result = {
        "benchmark": "import", "export": data, **measured, "convert": converted,
        "child_wall_s": round(wall, 2),
        "peak_rss_mb": measured["reimport"]["peak_rss_mb_so_far"],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_after": os.getloadavg()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    first = measured["first"]
    print(f"{args.n} tasks ({data['bytes'] / 2**20:.1f} MB, {data['spans']} spans): parse alone "
          f"{measured['parse_s']} s, parse+import "
          f"{first['seconds']} s ({first['docs_per_s']} docs/s), re-import {measured['reimport']['seconds']} s, "
          f"peak RSS {result['peak_rss_mb']} MB (first import: {first['peak_rss_mb_so_far']} MB); convert "
          f"{converted['seconds']} s ({converted['docs_per_s']} docs/s, {converted['windows']} windows), "
          f"peak RSS {converted['peak_rss_mb']} MB -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
