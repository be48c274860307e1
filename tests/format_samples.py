"""One sample per import format the README names, made from the real data in ../shared/data: for the tests that
import every format through ``cli.py import`` and through the Import page."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.shared_data import shared

BRAT_DOCS = ("15939911", "16778410", "17803823")


@dataclass(frozen=True)
class Sample:
    path: Path  # a file, or a folder (several uploaded files on the Import page)
    format: str  # ParseReport.format / ImportSummary.format
    documents: int
    min_spans: int


def _named_entity() -> tuple[dict, str, list[dict]]:
    task = json.loads(shared("label-studio-fixtures", "label-studio-frontend", "examples", "named_entity",
                             "annotations", "1.json").read_text(encoding="utf-8"))
    values = [r["value"] for r in task["annotations"][0]["result"]]
    return task, task["data"]["text"], values


def _conll(text: str, values: list[dict]) -> str:
    lines, pos = ["-DOCSTART- -X- O", ""], 0
    for token in text.split():
        start = text.index(token, pos)
        pos = start + len(token)
        tag = "O"
        for v in values:
            if v["start"] <= start < v["end"]:
                tag = ("B-" if start == v["start"] else "I-") + v["labels"][0]
        lines.append(f"{token} -X- _ {tag}")
    return "\n".join(lines) + "\n\n"


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"{folder.name}/{p.name}")
    return out


def format_samples(tmp: Path) -> dict[str, Sample]:
    """``{case: Sample}`` for Label Studio full JSON, JSON-MIN, CONLL2003, DICOM SR (.dcm, folder, zip), brat
    (folder, zip), written under ``tmp``."""
    task, text, values = _named_entity()
    full = tmp / "named_entity.json"
    full.write_text(json.dumps([task]), encoding="utf-8")
    row = {"text": text, "id": 1, "ner": values, "annotator": 1, "annotation_id": 1001}
    minimal = tmp / "named_entity-min.json"
    minimal.write_text(json.dumps([row]), encoding="utf-8")
    conll = tmp / "named_entity.conll"
    conll.write_text(_conll(text, values), encoding="utf-8")

    dicom_dir = tmp / "dicom"
    dicom_dir.mkdir()
    for name in ("test-SR.dcm", "sr_document.dcm", "reportsi.dcm"):
        shutil.copy(shared("dicom-sr", name), dicom_dir / name)
    brat_dir = tmp / "maccrobat"
    brat_dir.mkdir()
    for stem in BRAT_DOCS:
        for suffix in (".txt", ".ann"):
            shutil.copy(shared("maccrobat2020", stem + suffix), brat_dir / (stem + suffix))
    return {
        "json": Sample(full, "json", 1, 1),
        "json-min": Sample(minimal, "json-min", 1, 1),
        "conll": Sample(conll, "conll", 1, 1),
        "dicom-file": Sample(dicom_dir / "test-SR.dcm", "dicom", 1, 0),
        "dicom-folder": Sample(dicom_dir, "dicom", 3, 0),
        "dicom-zip": Sample(_zip(dicom_dir, tmp / "dicom.zip"), "dicom", 3, 0),
        "brat-folder": Sample(brat_dir, "brat", len(BRAT_DOCS), 30),
        "brat-zip": Sample(_zip(brat_dir, tmp / "maccrobat.zip"), "brat", len(BRAT_DOCS), 30),
    }
