"""Rule extraction speed: ``extract_ecg`` on synthetic ECG reports of growing size, and re-anchoring 2,000 spans
by UTF-16 offsets on a 1 MB text. Both are linear since issue 13 (before: about 1 s per KB of report, and 4 minutes
for the spans). Results: ``bench/README.md``, "Rule extraction speed".

    python bench/extract_bench.py [--sizes 10000,40000,100000,1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
    args = ap.parse_args()
    print("| report | entities | extract_ecg | per KB |\n|---|---|---|---|")
    for n, found, secs in bench_extract([int(s) for s in args.sizes.split(",")]):
        print(f"| {n / 1000:g} KB | {found:,} | {secs:.2f} s | {secs / (n / 1000) * 1000:.1f} ms |")
    print(f"\nRe-anchoring 2,000 spans by UTF-16 offsets on a 1 MB text: {bench_reanchor():.2f} s")


if __name__ == "__main__":
    main()
