"""Rule extraction speed: ``extract_ecg`` on synthetic ECG reports of growing size, and re-anchoring 2,000 spans
by UTF-16 offsets on a 1 MB text. Both are linear since issue 13 (before: about 1 s per KB of report, and 4 minutes
for the spans). Results: ``bench/README.md``, "Rule extraction speed".

    python bench/extract_bench.py [--sizes 10000,40000,100000,1000000] [--check | --write-reference]

``--check`` (default on) compares the entities (offsets, label, score, source, attrs) of a fixed corpus with
``bench/results/extract-reference.json``: the PTB-XL reports in ``../shared/data/ptb-xl`` (where present), 600 demo
reports, 100 30 KB reports cut at varying offsets, 500 random word salads of the rule vocabulary and 600 Chinese
demo reports (``core.demo_zh``, Holter summaries and 12-lead reports).
``--write-reference`` writes that file from the code as it is (do it only for an intended change of the rules).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT / "bench" / "results" / "extract-reference.json"
PTBXL = ROOT.parent / "shared" / "data" / "ptb-xl"

from core.rules import extract_ecg  # noqa: E402
from core.rules.lexicon import default_lexicon  # noqa: E402
from core.spancheck import check_region  # noqa: E402

PIECES = ("Sinus rhythm, heart rate 78 bpm. ", "PR 160 ms, QRS 0.09 s, QT/QTc 380/420 ms. ",
          "No atrial fibrillation. ", "Possible left axis deviation, axis -30°. ",
          "ST depression in V4-V6 cannot be excluded. ", "Vorhofflimmern, hf 140. ", "心率78次/分，可能房颤。",
          "RBBB. Otherwise normal ECG. ")


def report(n_chars: int) -> str:
    out, size, k = [], 0, 0
    while size < n_chars:
        out.append(PIECES[k % len(PIECES)])
        size += len(out[-1])
        k += 1
    return "".join(out)[:n_chars]


def bench_extract(sizes: list[int]) -> list[tuple[int, int, float]]:
    default_lexicon()  # built once per process (~0.1 s), not counted
    rows = []
    for n in sizes:
        text = report(n)
        started = time.perf_counter()
        entities = extract_ecg(text, include_cues=True)
        rows.append((n, len(entities), time.perf_counter() - started))
    return rows


SALAD = ("no", "not", "kein", "possible", "cannot be excluded", "but", "however", "and", "or", "sinus", "rhythm",
         "atrial", "fibrillation", "flutter", "hr", "78", "bpm", "/", "ms", "pr", "qrs", "qtc", "380/420", ",", ".",
         ";", "st", "depression", "elevation", "left", "axis", "deviation", "-30°", "rbbb", "lbbb", "normal", "ecg",
         "sonst", "Vorhofflimmern", "可能", "房颤", "心率", "次/分", "无", "T", "wave", "inversion", "V1-V3", "\n")


def corpus() -> list[str]:
    """The texts whose entities ``--check`` compares (the same list every run)."""
    texts: list[str] = []
    for name in ("ptbxl_database.csv", "ptbxl_rhythm_subset.csv"):
        if (PTBXL / name).exists():
            with open(PTBXL / name, encoding="utf-8", newline="") as f:
                texts += [row["report"] for row in csv.DictReader(f)]
    from core.demo import generate_demo_export

    texts += [t["data"]["text"] for seed in (0, 1) for t in generate_demo_export(300, seed=seed)]
    texts += [report(30_000 + 37 * k)[k * 7 :] for k in range(100)]
    rng = random.Random(13)
    texts += [" ".join(rng.choice(SALAD) for _ in range(rng.randint(1, 120))) for _ in range(500)]
    from core.demo_zh import generate_zh_export  # Holter and 12-lead reports in Chinese (issue 16), last

    texts += [t["data"]["text"] for seed in (0, 1) for t in generate_zh_export(300, seed=seed)]
    return texts


def digest(text: str) -> str:
    entities = extract_ecg(text, include_cues=True)
    rows = [[e.start, e.end, e.label, e.score, e.source, e.attrs] for e in entities]
    return hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def check(write: bool) -> str:
    texts = corpus()
    started = time.perf_counter()
    got = [digest(t) for t in texts]
    took = time.perf_counter() - started
    if write:
        REFERENCE.write_text(json.dumps({"texts": len(texts), "digests": got}) + "\n", encoding="utf-8")
        return f"wrote {REFERENCE.name}: {len(texts):,} texts ({took:.1f} s)"
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    if ref["texts"] != len(texts):
        raise SystemExit(f"the corpus has {len(texts):,} texts, the reference {ref['texts']:,}: is "
                         f"{PTBXL} missing or changed?")
    bad = [k for k, (a, b) in enumerate(zip(got, ref["digests"], strict=True)) if a != b]
    if bad:
        raise SystemExit(f"entities differ from the reference on {len(bad):,} of {len(texts):,} texts "
                         f"(first: #{bad[0]}: {texts[bad[0]][:80]!r})")
    return f"entities identical to the reference on {len(texts):,} texts ({took:.1f} s)"


def bench_reanchor(n_spans: int = 2000, n_chars: int = 1_000_000) -> float:
    unit = "😀 sinus rhythm, "
    text = unit * (n_chars // len(unit))
    step = (n_chars // len(unit)) // n_spans // 2 * 2  # even: the UTF-16 offsets never land on another "sinus"
    started = time.perf_counter()
    for k in range(0, n_spans * step, step):
        js = k * (len(unit) + 1) + 3
        assert check_region(text, js, js + 5, "RHYTHM", "sinus", "Task 1").offsets == (k * len(unit) + 2,
                                                                                      k * len(unit) + 7)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,40000,100000,1000000")
    ap.add_argument("--no-check", dest="check", action="store_false", help="skip the comparison with the reference")
    ap.add_argument("--write-reference", action="store_true", help="write the reference from the code as it is")
    args = ap.parse_args()
    if args.write_reference or args.check:
        print(check(args.write_reference) + "\n")
    if args.write_reference:
        return
    print("| report | entities | extract_ecg | per KB |\n|---|---|---|---|")
    for n, found, secs in bench_extract([int(s) for s in args.sizes.split(",")]):
        print(f"| {n / 1000:g} KB | {found:,} | {secs:.2f} s | {secs / (n / 1000) * 1000:.1f} ms |")
    print(f"\nRe-anchoring 2,000 spans by UTF-16 offsets on a 1 MB text: {bench_reanchor():.2f} s")


if __name__ == "__main__":
    main()
