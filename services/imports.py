"""Import one file (Label Studio export or DICOM SR) into a project: the operation behind the Import page and
``cli.py import``; and the demo project seeded on first run through the same Label Studio path."""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.labelconfig import LabelConfig, parse_label_config
from core.labelstudio import ParseReport, iter_tasks
from core.types import ParsedTask, ReportLensError

log = logging.getLogger("reportlens.import")

SUPPORTED_UPLOADS = ["json", "conll", "txt", "dcm", "zip"]
DICOM_SUFFIXES = (".dcm", ".dicom")
Progress = Callable[[int, "float | None"], None]


def read_config_text(data: bytes) -> LabelConfig:
    """A labeling config from uploaded bytes, with a clear message when it is not UTF-8 XML."""
    try:
        xml = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportLensError(
            f"The labeling config is not UTF-8 (bad byte at offset {exc.start}); save it as UTF-8 and upload again."
        ) from None
    return parse_label_config(xml)


def is_dicom_source(path: Path) -> bool:
    """A folder, a .dcm file, a file with the DICM preamble, or a zip holding no JSON/CoNLL export."""
    if path.is_dir() or path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        return True
    if zipfile.is_zipfile(path):
        return True
    return False


def _tasks(path: Path, config: LabelConfig | None, report: ParseReport) -> tuple[Iterator[ParsedTask], str]:
    if is_dicom_source(path):
        from core.dicom import iter_dicom

        report.format = "dicom"
        return iter_dicom(path, report.issues), "dicom"
    it = iter_tasks(path, config=config, report=report)
    return it, "labelstudio"


def import_file(
    engine: Any,
    path: Path,
    project: str,
    *,
    config: LabelConfig | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    file_name: str | None = None,
) -> Any:
    """Parse ``path`` while storing it in one transaction; returns the importer's ``ImportSummary``.

    Raises :class:`ReportLensError` (nothing stored) for an unreadable file, or in strict mode when any item has an
    error. Log lines name files, projects and counts, never report text.
    """
    from db.importer import import_tasks

    path = Path(path)
    if not path.exists():
        raise ReportLensError(f"{path} does not exist; check the path.")
    if not project or not project.strip():
        raise ReportLensError("Give the project a name.")
    report = ParseReport()
    tasks, source = _tasks(path, config, report)
    size = path.stat().st_size if path.is_file() else 0

    def on_progress(n: int) -> None:
        if progress is not None:
            read = getattr(report, "bytes_read", 0)
            progress(n, read / size if size and read else None)

    log.info("importing %s into project %r (strict=%s)", file_name or path.name, project, strict)
    summary = import_tasks(
        engine, project.strip(), tasks, report=report, file_name=file_name or path.name, strict=strict,
        source=source, progress=on_progress,
    )
    log.info("imported %s: %s", file_name or path.name, {k: v for k, v in summary.to_dict().items()
                                                          if isinstance(v, int)})
    return summary


def seed_demo(engine: Any, *, force: bool = False, n: int = 300, seed: int = 0) -> dict[str, Any]:
    """Create the demo project (synthetic ECG and radiology reports) when the database has no project yet.

    The demo goes through the same path as a user's export: a Label Studio JSON file and its labeling config.
    """
    from core.demo import DEMO_LABEL_CONFIG, DEMO_PROJECT_NAME, generate_demo_export
    from db.repository import list_projects

    if list_projects(engine) and not force:
        return {"seeded": False, "reason": "the database already has projects"}
    with tempfile.TemporaryDirectory(prefix="reportlens-demo-") as tmp:
        export = Path(tmp) / "demo-export.json"
        export.write_text(json.dumps(generate_demo_export(n=n, seed=seed)), encoding="utf-8")
        summary = import_file(engine, export, DEMO_PROJECT_NAME, config=parse_label_config(DEMO_LABEL_CONFIG),
                              file_name="demo-export.json (synthetic)")
    return {"seeded": True, **summary.to_dict()}
