"""ReportLens headless: the same operations as the app, for scripts and CI.

    python cli.py import EXPORT --project NAME [--config XML] [--strict]
    python cli.py convert EXPORT --out FILE.jsonl [--model DIR] [--max-length N --stride N] [--config XML]
    python cli.py projects
    python cli.py seed-demo [--force]

Exit codes: 0 done, 1 bad input (the message says what, where and how to fix), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from core.types import ReportLensError

log = logging.getLogger("reportlens.cli")


def _read_config(path: str | None) -> Any:
    if not path:
        return None
    from core.labelconfig import parse_label_config

    p = Path(path)
    if not p.is_file():
        raise ReportLensError(f"Labeling config {path} does not exist; give the path of the XML from Label Studio.")
    return parse_label_config(p.read_text(encoding="utf-8"))


def _engine() -> Any:
    """The database engine, migrated to the newest schema first (a no-op when it already is)."""
    from db.engine import database_url, make_engine
    from db.migrate import upgrade

    url = database_url()
    upgrade(url)
    return make_engine(url)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def cmd_import(args: argparse.Namespace) -> int:
    from services.imports import import_file

    engine = _engine()
    summary = import_file(
        engine, Path(args.export), args.project, config=_read_config(args.config), strict=args.strict,
        progress=_progress_printer(),
    )
    _print_json(summary.to_dict())
    return 0


def _progress_printer():  # noqa: ANN202
    """Progress on stderr (stdout stays pure JSON), at most every 5,000 tasks."""
    last = [0]

    def progress(n: int, fraction: float | None) -> None:
        if n - last[0] >= 5000:
            last[0] = n
            pct = f" ({fraction:.0%} of the file)" if fraction else ""
            print(f"... {n:,} tasks read{pct}", file=sys.stderr, flush=True)

    return progress


def cmd_convert(args: argparse.Namespace) -> int:
    from core.alignment import AlignConfig
    from services.convert import convert_export

    cfg = AlignConfig(max_length=args.max_length, stride=args.stride,
                      label_all_subtokens=not args.first_subtoken_only)
    summary = convert_export(Path(args.export), Path(args.out), model=args.model, align=cfg,
                             config=_read_config(args.config), include_unlabeled=args.include_unlabeled)
    _print_json(summary)
    return 0


def cmd_projects(args: argparse.Namespace) -> int:
    from db.repository import list_projects

    _print_json([p.__dict__ for p in list_projects(_engine())])
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from services.imports import seed_demo

    result = seed_demo(_engine(), force=args.force, n=args.n)
    _print_json(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cli.py", description="ReportLens command line")
    sub = p.add_subparsers(dest="command", required=True)

    imp = sub.add_parser("import", help="import a Label Studio export (JSON, JSON-MIN, CONLL2003) or DICOM SR files")
    imp.add_argument("export", help="export file, .dcm file, folder or .zip of DICOM files")
    imp.add_argument("--project", required=True, help="project name (created if missing)")
    imp.add_argument("--config", help="Label Studio labeling config XML")
    imp.add_argument("--strict", action="store_true", help="store nothing if any item has an error")
    imp.set_defaults(func=cmd_import)

    conv = sub.add_parser("convert", help="write token-aligned BIO windows as JSON lines (no database)")
    conv.add_argument("export")
    conv.add_argument("--out", required=True, help="output .jsonl file")
    conv.add_argument("--model", default=None, help="base model folder (default: the bundled MiniLM BERT)")
    conv.add_argument("--max-length", type=int, default=256, help="tokens per window, special tokens included")
    conv.add_argument("--stride", type=int, default=32, help="tokens shared by consecutive windows")
    conv.add_argument("--first-subtoken-only", action="store_true",
                      help="tag only a word's first sub-token (others get null)")
    conv.add_argument("--config", help="Label Studio labeling config XML")
    conv.add_argument("--include-unlabeled", action="store_true",
                      help="also write tasks without annotations (their tags are null)")
    conv.set_defaults(func=cmd_convert)

    proj = sub.add_parser("projects", help="list projects")
    proj.set_defaults(func=cmd_projects)

    demo = sub.add_parser("seed-demo", help="create the demo project if the database has no project")
    demo.add_argument("--force", action="store_true", help="re-import the demo even if projects exist")
    demo.add_argument("--n", type=int, default=300, help="number of synthetic reports")
    demo.set_defaults(func=cmd_seed_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ReportLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"error: {exc.filename or exc}: no such file. Check the path.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
