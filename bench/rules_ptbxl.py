"""Recall / precision of the ECG rule extractor on the PTB-XL reports against their SCP codes.

    python bench/rules_ptbxl.py [--data ../shared/data/ptb-xl] [--markdown]

For each report, the rules' codes are the ``scp_code`` of every entity that is not negated (uncertain ones count:
PTB-XL also codes "possible" statements, with a lower likelihood). Gold:

- ``ptbxl_database.csv`` (500 rows): every key of ``scp_codes`` (any likelihood);
- ``ptbxl_rhythm_subset.csv`` (4,381 rows): its ``labels`` column (AFIB, STACH, SBRAD, 1AVB, CRBBB, CLBBB only).

Per code the rules can emit: TP, FP, FN, precision, recall; codes in the gold that no rule emits are listed with
their support. The data are read from the shared folder here only; the app never reads it.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.rules import extract_ecg  # noqa: E402
from core.rules.lexicon import default_lexicon  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ptb-xl"


def rule_codes(text: str) -> set[str]:
    return {e.attrs["scp_code"] for e in extract_ecg(text) if e.attrs.get("scp_code") and not e.attrs.get("negated")}


def evaluate(rows: list[tuple[str, set[str]]], restrict: set[str] | None = None) -> dict:
    covered = {t.scp_code for t in default_lexicon().terms.values() if t.scp_code}
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    support: Counter[str] = Counter()
    t0 = time.perf_counter()
    for text, gold in rows:
        pred = rule_codes(text)
        if restrict is not None:
            pred &= restrict
        support.update(gold)
        for c in pred | gold:
            if c in pred and c in gold:
                tp[c] += 1
            elif c in pred:
                fp[c] += 1
            else:
                fn[c] += 1
    seconds = time.perf_counter() - t0
    per_code = {}
    for c in sorted(set(support) | set(tp) | set(fp), key=lambda c: (-support[c], c)):
        if c not in covered:
            continue
        p = tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else None
        r = tp[c] / support[c] if support[c] else None
        per_code[c] = {"support": support[c], "tp": tp[c], "fp": fp[c], "fn": fn[c], "precision": p, "recall": r}
    micro_tp = sum(v["tp"] for v in per_code.values())
    micro_fp = sum(v["fp"] for v in per_code.values())
    micro_sup = sum(v["support"] for v in per_code.values())
    return {"reports": len(rows), "seconds": seconds, "per_code": per_code,
            "micro": {"precision": micro_tp / (micro_tp + micro_fp) if micro_tp + micro_fp else None,
                      "recall": micro_tp / micro_sup if micro_sup else None},
            "not_covered": {c: n for c, n in support.most_common() if c not in covered}}


def load(path: Path, gold_column: str) -> list[tuple[str, set[str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        out = []
        for row in csv.DictReader(fh):
            value = ast.literal_eval(row[gold_column])
            out.append((row["report"], set(value.keys() if isinstance(value, dict) else value)))
    return out


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def markdown(name: str, res: dict) -> str:
    lines = [f"**{name}** ({res['reports']} reports, {res['reports'] / res['seconds']:.0f} reports/s; micro over the "
             f"codes below: precision {_fmt(res['micro']['precision'])}, recall {_fmt(res['micro']['recall'])})", "",
             "| SCP code | support | TP | FP | FN | precision | recall |", "|---|---:|---:|---:|---:|---:|---:|"]
    for c, v in res["per_code"].items():
        if v["support"] or v["fp"]:
            lines.append(f"| {c} | {v['support']} | {v['tp']} | {v['fp']} | {v['fn']} | {_fmt(v['precision'])} | "
                         f"{_fmt(v['recall'])} |")
    if res["not_covered"]:
        lines += ["", "Not covered by any rule (code: support): "
                  + ", ".join(f"{c}: {n}" for c, n in res["not_covered"].items())]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--markdown", action="store_true", help="print the tables for bench/README.md")
    args = ap.parse_args()
    if not (args.data / "ptbxl_database.csv").is_file():
        print(f"error: {args.data}/ptbxl_database.csv not found; pass --data with the PTB-XL folder.", file=sys.stderr)
        return 1
    default_lexicon()  # built once, not timed
    results = {
        "ptbxl_database.csv (scp_codes)": evaluate(load(args.data / "ptbxl_database.csv", "scp_codes")),
        "ptbxl_rhythm_subset.csv (labels)": evaluate(load(args.data / "ptbxl_rhythm_subset.csv", "labels"),
                                                     restrict={"AFIB", "STACH", "SBRAD", "1AVB", "CRBBB", "CLBBB"}),
    }
    if args.markdown:
        print("\n\n".join(markdown(k, v) for k, v in results.items()))
    else:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
