"""ReportLens headless: the same operations as the app, for scripts and CI.

    python cli.py import EXPORT --project NAME [--config XML] [--strict] [--source NAME]
    python cli.py convert EXPORT --out FILE.jsonl [--model DIR] [--max-length N --stride N --partial-token P]
        [--first-subtoken-only] [--config XML]
    python cli.py projects
    python cli.py seed-demo [--force] [--no-jobs]
    python cli.py train --project NAME [config flags, see --help] [--wait]
    python cli.py adapt --project NAME [--parent BASE --vocab-min-count N --vocab-max-new N --mlm-steps N
        --method full|lora ... see --help] [--wait] | adapt --project NAME --list
    python cli.py models --project NAME
    python cli.py evaluate (--model VERSION | --project NAME) EXPORT
    python cli.py predict (--model VERSION | --project NAME) EXPORT --out FILE.json
    python cli.py score --project NAME [--strategy S] [--per-token] [--top K] [--out FILE.jsonl]
    python cli.py extract [--project NAME] (TEXT | --file FILE) | --project NAME --csv OUT.csv [--runtime onnx]
    python cli.py export (--model VERSION | --project NAME) [--format onnx|merged] [--int8]
    python cli.py preannotate --project NAME
    python cli.py audit [--person WHO] [--action A] [--project NAME] [--since ISO] [--until ISO] [--outcome O]
    python cli.py users [grant|revoke WHO ROLE [--project NAME] | activate|deactivate WHO]
    python cli.py serve [--host 127.0.0.1] [--port 8000] [--threads N] [--runtime torch|onnx|onnx-int8]
    python cli.py tokens [create --name N [--project P] | revoke NAME|ID]

The CLI acts as ``cli:<os user>`` with every role; the audit trail records it so.

Exit codes: 0 done, 1 bad input (the message says what, where and how to fix), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from core.threads import ProcessKind, size_process_threads
from core.types import ReportLensError

log = logging.getLogger("reportlens.cli")


def _read_config(path: str | None) -> Any:
    if not path:
        return None
    from services.imports import read_config_text

    p = Path(path)
    if not p.is_file():
        raise ReportLensError(f"Labeling config {path} does not exist; give the path of the XML from Label Studio.")
    return read_config_text(p.read_bytes())  # not UTF-8: a message, as on the Import page


def _engine() -> Any:
    """The database engine, migrated to the newest schema first (a no-op when it already is)."""
    from services.app import database_url, open_database
    from services.auth import cli_actor, set_process_actor

    engine = open_database(database_url())
    set_process_actor(cli_actor(), engine)  # refusals of calls without an engine argument are audited here too
    return engine


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def cmd_import(args: argparse.Namespace) -> int:
    from services.imports import import_file, text_key_notes

    engine = _engine()
    summary = import_file(
        engine, Path(args.export), args.project, config=_read_config(args.config), strict=args.strict,
        progress=_progress_printer(), source_name=args.source,
    )
    _print_json(summary.to_dict())
    for note in text_key_notes(summary):
        print(f"warning: {note}", file=sys.stderr)
    if summary.text_changed:
        print(f"warning: {summary.changes_note()}", file=sys.stderr)
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
    from core.trainconfig import align_from_cli_args
    from services.convert import convert_export

    cfg = align_from_cli_args(args)
    summary = convert_export(Path(args.export), Path(args.out), model=args.model, align=cfg,
                             config=_read_config(args.config), include_unlabeled=args.include_unlabeled)
    _print_json(summary)
    return 0


def cmd_projects(args: argparse.Namespace) -> int:
    from services.projects import delete_project, list_projects

    if args.action == "delete":
        if not args.name:
            raise ReportLensError("Name the project to delete: `cli.py projects delete NAME --yes`.")
        if not args.yes:
            raise ReportLensError(f"Deleting project {args.name!r} removes its documents, annotations, reviews and "
                                  "models for good (the audit trail stays); add --yes to confirm.")
        _print_json(delete_project(_engine(), args.name, confirm=args.name))
        return 0
    _print_json([p.__dict__ for p in list_projects(_engine())])
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from services.imports import seed_demo

    result = seed_demo(_engine(), force=args.force, n=args.n, jobs=not args.no_jobs)
    for name, summary in (result.get("projects") or {}).items():
        print(f"demo project {name!r}: {summary.get('documents_added', 0)} reports added", file=sys.stderr)
    if result.get("jobs"):
        print("queued: train, then " + ", then ".join(result["jobs"]["chain"]), file=sys.stderr)
    _print_json(result)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from core.trainconfig import from_cli_args
    from services.projects import require_project
    from services.training import queue_training

    engine = _engine()
    project = require_project(engine, args.project)
    job, started = queue_training(engine, project.id, from_cli_args(args))
    print(f"queued training job {job.id} for {project.name!r}" + (" (worker started)" if started else ""),
          file=sys.stderr)
    if not args.wait:
        _print_json({"job": job.id, "status": job.status})
        return 0
    return _wait_for(engine, job.id)


def cmd_adapt(args: argparse.Namespace) -> int:
    from core.adaptconfig import from_cli_args
    from services.adapt import base_versions, queue_adaptation, version_rows
    from services.projects import require_project

    engine = _engine()
    project = require_project(engine, args.project)
    if args.list:
        for row in version_rows(base_versions(engine, project.id)):
            print(json.dumps(row, ensure_ascii=False))
        return 0
    job, started = queue_adaptation(engine, project.id, from_cli_args(args))
    print(f"queued adaptation job {job.id} ({job.params['name']}) for {project.name!r}"
          + (" (worker started)" if started else ""), file=sys.stderr)
    if not args.wait:
        _print_json({"job": job.id, "status": job.status, "name": job.params["name"]})
        return 0
    return _wait_for(engine, job.id)


def _wait_for(engine: Any, job_id: int) -> int:
    import time

    from core.jobs import JobStatus
    from services.jobs import cancel_job, get_job
    from services.models import list_versions

    last = None
    try:
        while True:
            job = get_job(engine, job_id)
            line = _progress_line(job.status, job.progress)
            if line != last:
                print(line, file=sys.stderr, flush=True)
                last = line
            if not job.is_active:
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        cancel_job(engine, job_id)
        print(f"cancel requested for job {job_id}", file=sys.stderr)
        return 130
    out: dict[str, Any] = {"job": job.id, "status": job.status, "error": job.error}
    version = next((v for v in list_versions(engine, job.project_id) if v.job_id == job.id), None)
    if version is not None:
        out.update({"model_version": version.name, "model_id": version.id, "active": version.is_active,
                    "duration_s": version.duration_s, "metrics": _metric_summary(version.metrics)})
    elif job.result:
        out["result"] = job.result  # e.g. an adaptation: the base version, vocabulary added, held-out loss
    _print_json(out)
    return 0 if job.status == JobStatus.SUCCEEDED else 1


def _progress_line(status: str, p: Any) -> str:
    """One line per change of a job's :class:`core.jobs.Progress` for ``--wait``."""
    parts = [str(status)]
    if p.step is not None and p.max_steps:
        parts.append(f"step {p.step:g}/{p.max_steps:g}")
    if p.epoch is not None:
        parts.append(f"epoch {float(p.epoch):.2f}")
    if p.loss is not None:
        parts.append(f"loss {float(p.loss):.4f}")
    dev = p.metrics.get("dev") if isinstance(p.metrics.get("dev"), dict) else {}
    if dev.get("f1") is not None:
        parts.append(f"dev F1 {float(dev['f1']):.3f}")
    if dev.get("mlm_loss") is not None:
        parts.append(f"held-out MLM loss {float(dev['mlm_loss']):.3f}")
    if eta := p.eta_text():
        parts.append(eta)
    if p.message:
        parts.append(str(p.message))
    return " | ".join(parts)


def _metric_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for split in ("dev", "test"):
        m = (metrics or {}).get(split) or {}
        if m:
            out[split] = {k: m.get(k) for k in ("precision", "recall", "f1", "per_label", "documents")}
    return out


def cmd_models(args: argparse.Namespace) -> int:
    from services.models import version_rows

    _print_json(version_rows(_engine(), args.project))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from services.models import evaluate_export, resolve_version, set_default_runtime

    set_default_runtime(args.runtime)

    engine = _engine()
    _print_json(evaluate_export(engine, Path(args.export), resolve_version(engine, args.model, args.project)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from services.models import predict_export, resolve_version, set_default_runtime

    set_default_runtime(args.runtime)

    engine = _engine()
    version = resolve_version(engine, args.model, args.project)
    _print_json(predict_export(engine, Path(args.export), version, Path(args.out)))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from core.active import ScoreConfig
    from core.active.config import CLI_DEST_PREFIX
    from core.configs import from_flags
    from services.files import write_jsonl
    from services.queue import ranked_rows, score_in_process

    engine = _engine()
    config = from_flags(args, ScoreConfig, CLI_DEST_PREFIX)
    result = score_in_process(engine, args.project, config)
    if result.cold_start:
        print("no trained model yet: ranked by diversity over base-model embeddings (cold start)", file=sys.stderr)
    dup = result.duplicates
    if dup.get("ranked_last"):
        print(f"{dup['ranked_last']} of {dup['documents']} reports repeat a text ranked higher or already labelled "
              f"({dup['already_labelled']}): they come after the {dup['new_texts']} new texts", file=sys.stderr)
    if args.out:
        rows = ranked_rows(engine, result)
        write_jsonl(rows, Path(args.out))
        print(f"wrote {len(rows)} ranked reports ({result.primary}, model {result.model_version or 'none'}) to "
              f"{args.out}", file=sys.stderr)
        return 0
    rows = ranked_rows(engine, result, top=args.top)
    print(f"{'rank':>5}  {'task_id':>8}  {'document_id':>11}  {'score':>10}  strategy")
    for r in rows:
        task = "-" if r["task_id"] is None else r["task_id"]
        print(f"{r['rank']:>5}  {task:>8}  {r['document_id']:>11}  {r['score']:>10.4f}  {r['strategy']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from services.models import export_version, resolve_version

    engine = _engine()
    version = resolve_version(engine, args.model, args.project)
    result = export_version(engine, version, args.format, int8=args.int8, exporter=args.exporter)
    card = result.pop("card", None)
    if card is not None:
        result["checks"] = card["checks"]
        result["exporter"] = card["exporter"]
    _print_json(result)
    return 0


def _runtime_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", default=None,
                        help="model runtime: torch (default), onnx (the version's ONNX export, see `export`), "
                             "onnx-int8, or an ONNX export folder")


def cmd_extract(args: argparse.Namespace) -> int:
    from services.extract import extract_text, project_csv
    from services.models import set_default_runtime

    set_default_runtime(args.runtime)

    if args.csv:
        if not args.project or args.text or args.file:
            raise ReportLensError("--csv OUT writes a whole project: give --project NAME and no TEXT / --file.")
        data = project_csv(_engine(), args.project)
        Path(args.csv).write_text(data, encoding="utf-8")
        print(f"wrote {max(data.count(chr(10)) - 1, 0)} entity rows to {args.csv}", file=sys.stderr)
        return 0
    if (args.text is None) == (args.file is None):
        raise ReportLensError("Give the report either as TEXT or with --file FILE (not both); --file - reads stdin.")
    if args.file is not None:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            path = Path(args.file)
            if not path.is_file():
                raise ReportLensError(f"--file {args.file}: no such file. Check the path.")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ReportLensError(f"--file {args.file} is not UTF-8 text (byte {exc.start}); save the report as "
                                      "UTF-8 and try again.") from exc
    else:
        text = args.text
    engine = _engine() if args.project else None
    _print_json(extract_text(text, engine, args.project))
    return 0


def cmd_preannotate(args: argparse.Namespace) -> int:
    from services.extract import preannotate_with_rules

    n = preannotate_with_rules(_engine(), args.project)
    _print_json({"project": args.project, "documents_preannotated": n})
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from services.labelstudio import client, push

    engine = _engine()
    if args.batch is not None and args.top is not None:
        raise ReportLensError("Give either --batch ID or --top K (a new batch from the queue), not both.")
    if args.out and (args.url or args.ls_project or args.new_ls_project):
        raise ReportLensError("--out writes an import file; --url/--ls-project/--new-ls-project send to a server. "
                              "Pick one.")
    if args.batch is None and args.top is None:
        raise ReportLensError("Say what to send: --batch ID (see the Label Studio page) or --top K [--strategy S].")
    conn = None if args.out else client.connection(args.url)
    if conn is not None:
        client.check_connection(conn)  # a server that is down or a bad token: no batch is made
    batch_id = args.batch
    if batch_id is None:
        batch_id = push.batch_from_queue(engine, args.project, args.top, args.strategy).id
    if args.out:
        _print_json(push.write_import_file(engine, args.project, Path(args.out), batch_id=batch_id))
    else:
        _print_json(push.push(engine, args.project, conn, batch_id=batch_id, ls_project_id=args.ls_project,
                              new_ls_project=args.new_ls_project))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from services.labelstudio.client import connection
    from services.labelstudio.pull import pull

    _print_json(pull(_engine(), args.project, connection(args.url), ls_project_id=args.ls_project))
    return 0


def _when(value: str | None) -> Any:
    from datetime import UTC, datetime

    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ReportLensError(f"{value!r} is not a date or time; write e.g. 2026-12-01 or 2026-12-01T14:30 "
                              "(UTC unless it carries an offset).") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def cmd_audit(args: argparse.Namespace) -> int:
    from services.people import audit_trail

    rows = audit_trail(_engine(), person=args.person, action=args.action, project=args.project,
                       since=_when(args.since), until=_when(args.until), outcome=args.outcome, limit=args.limit)
    for row in rows:
        print(json.dumps(row.to_dict(), ensure_ascii=False, default=str))
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from services import people

    engine = _engine()
    if args.change in ("grant", "revoke"):
        change = people.grant_role if args.change == "grant" else people.revoke_role
        _print_json(change(engine, args.who, args.role, project=args.project))
    elif args.change in ("activate", "deactivate"):
        _print_json(people.set_active(engine, args.who, args.change == "activate").to_dict())
    else:
        _print_json([u.to_dict() for u in people.list_people(engine)])
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from api.server import serve

    return serve(args.host, args.port, args.runtime, args.threads)


def cmd_tokens(args: argparse.Namespace) -> int:
    from services import api_tokens

    engine = _engine()
    if args.change == "create":
        info, secret = api_tokens.create_token(engine, args.name, args.project)
        print(f"token {info.name!r} created (id {info.id}); it is shown only now, store it safely:", file=sys.stderr)
        print(secret)
    elif args.change == "revoke":
        _print_json(api_tokens.revoke_token(engine, args.which).to_dict())
    else:
        _print_json([t.to_dict() for t in api_tokens.list_tokens(engine)])
    return 0


def _add_serve_commands(sub: Any) -> None:
    srv = sub.add_parser("serve", help="the REST API and the Label Studio ML backend (README \"Serving\")")
    srv.add_argument("--host", default="127.0.0.1", help="address (default loopback; another needs a token)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: the CLI's, all "
                     "cores or OMP_NUM_THREADS; bench/README.md \"Serving speed\" measured both)")
    _runtime_flag(srv)
    srv.set_defaults(func=cmd_serve)
    tok = sub.add_parser("tokens", help="list API tokens; create one (shown once) or revoke one")
    tok.set_defaults(func=cmd_tokens, change=None)
    changes = tok.add_subparsers(dest="change")
    create = changes.add_parser("create", help="a new token (prints it once; only its sha256 is stored)")
    create.add_argument("--name", required=True)
    create.add_argument("--project", help="scope the token to this project (required for the ML backend)")
    changes.add_parser("revoke", help="revoke a token").add_argument("which", help="token name or id")


def _add_people_commands(sub: Any) -> None:
    from services.people import OUTCOMES

    aud = sub.add_parser("audit", help="print the audit trail as JSON lines, oldest first (filters combine)")
    aud.add_argument("--person", help="actor subject (e.g. cli:alice), or a user's e-mail or subject")
    aud.add_argument("--action", help="e.g. import, train_queued, role_granted, sign_in")
    aud.add_argument("--project", help="project name")
    aud.add_argument("--since", help="from this UTC date/time (ISO 8601), inclusive")
    aud.add_argument("--until", help="before this UTC date/time (ISO 8601)")
    aud.add_argument("--outcome", choices=OUTCOMES)
    aud.add_argument("--limit", type=int)
    aud.set_defaults(func=cmd_audit)

    from core.auth import Role

    users = sub.add_parser("users", help="list people and their roles; grant/revoke roles, (de)activate people")
    users.set_defaults(func=cmd_users, change=None)
    changes = users.add_subparsers(dest="change")
    for verb in ("grant", "revoke"):
        c = changes.add_parser(verb, help=f"{verb} a role (audited)")
        c.add_argument("who", help="user id, subject or e-mail")
        c.add_argument("role", choices=[r.value for r in Role])
        c.add_argument("--project", help="only in this project (default: everywhere)")
    for verb in ("activate", "deactivate"):
        changes.add_parser(verb, help=f"{verb} a person (audited)").add_argument("who")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cli.py", description="ReportLens command line")
    sub = p.add_subparsers(dest="command", required=True)

    from core.formats.registry import FORMATS

    formats = "; ".join(f"{f.title}: {f.description}" for f in FORMATS)
    imp = sub.add_parser("import", help=f"import a file or folder ({', '.join(f.title for f in FORMATS)})",
                         description=f"Formats (recognised from the content): {formats}.")
    imp.add_argument("export", help="export file, or a folder or .zip (DICOM SR files, brat .txt/.ann pairs)")
    imp.add_argument("--project", required=True, help="project name (created if missing)")
    imp.add_argument("--config", help="Label Studio labeling config XML")
    imp.add_argument("--strict", action="store_true",
                     help="store nothing if any item has an error or a stored document's text would change")
    imp.add_argument("--source", default=None, metavar="NAME",
                     help="name of where the file comes from (e.g. the Label Studio server), part of each "
                          "document's identity: task ids of different sources never overwrite one another "
                          "(default: 'local' for exports that name their Label Studio project, else one unnamed "
                          "source)")
    imp.set_defaults(func=cmd_import)

    conv = sub.add_parser("convert", help="write token-aligned BIO windows as JSON lines (no database)")
    conv.add_argument("export")
    conv.add_argument("--out", required=True, help="output .jsonl file")
    conv.add_argument("--model", default=None, help="base model folder (default: the bundled MiniLM BERT)")
    from core.trainconfig import add_align_cli_args

    add_align_cli_args(conv)  # --max-length --stride --first-subtoken-only --partial-token ..., as in training
    conv.add_argument("--config", help="Label Studio labeling config XML")
    conv.add_argument("--include-unlabeled", action="store_true",
                      help="also write tasks without annotations (their tags are null)")
    conv.set_defaults(func=cmd_convert)

    proj = sub.add_parser("projects", help="list projects; `projects delete NAME --yes` deletes one (admin)")
    proj.add_argument("action", nargs="?", choices=["list", "delete"], default="list")
    proj.add_argument("name", nargs="?", help="the project to delete")
    proj.add_argument("--yes", action="store_true", help="confirm the deletion (nothing is deleted without it)")
    proj.set_defaults(func=cmd_projects)

    demo = sub.add_parser("seed-demo", help="create the demo projects (English, Chinese) if the database has none")
    demo.add_argument("--force", action="store_true", help="re-import the demo even if projects exist")
    demo.add_argument("--n", type=int, default=300, help="number of synthetic reports per demo project")
    demo.add_argument("--no-jobs", action="store_true",
                      help="only import: do not queue the demo's first training job and scoring run")
    demo.set_defaults(func=cmd_seed_demo)

    from core.trainconfig import add_cli_args

    train = sub.add_parser("train", help="queue a training job (LoRA by default) for a project")
    train.add_argument("--project", required=True)
    train.add_argument("--wait", action="store_true", help="print progress, then the final metrics as JSON")
    add_cli_args(train)
    train.set_defaults(func=cmd_train)

    from core.adaptconfig import add_cli_args as add_adapt_args

    adapt = sub.add_parser("adapt", help="adapt a base model to a project's text (vocabulary + masked-LM "
                                         "pretraining); the result is a base version training can start from")
    adapt.add_argument("--project", required=True)
    adapt.add_argument("--wait", action="store_true", help="print progress, then the result as JSON")
    adapt.add_argument("--list", action="store_true", help="list the project's base versions as JSON lines")
    add_adapt_args(adapt)
    adapt.set_defaults(func=cmd_adapt)

    models = sub.add_parser("models", help="list a project's model versions (the active one marked)")
    models.add_argument("--project", required=True)
    models.set_defaults(func=cmd_models)

    from core.active import ScoreConfig
    from core.active.config import CLI_DEST_PREFIX as SCORE_PREFIX
    from core.configs import add_flags, field_specs

    score = sub.add_parser("score", help="rank a project's unlabeled reports for labelling (active learning)")
    score.add_argument("--project", required=True)
    add_flags(score.add_argument_group("scoring config"), field_specs(ScoreConfig), SCORE_PREFIX)
    score.add_argument("--top", type=int, default=20, help="rows to print without --out (20)")
    score.add_argument("--out", help="write every ranked report as JSON lines to this file, rank 1 first")
    score.set_defaults(func=cmd_score)

    ext = sub.add_parser("extract", help="structured result of an ECG report as JSON (rules, + the project's model)")
    ext.add_argument("text", nargs="?", help="the report text (or use --file)")
    ext.add_argument("--file", help="a UTF-8 text file with the report ('-' reads stdin)")
    ext.add_argument("--project", help="merge the rules with this project's active model, in its labels")
    ext.add_argument("--csv", help="with --project: write every entity of every document of the project to this CSV")
    _runtime_flag(ext)
    ext.set_defaults(func=cmd_extract)

    exp = sub.add_parser("export", help="export a model version: ONNX (onnxruntime, no torch) or a merged "
                                        "transformers folder")
    exp.add_argument("--model", help="model version id (or a name like v3 with --project)")
    exp.add_argument("--project", help="project whose active model version is exported")
    exp.add_argument("--format", choices=["onnx", "merged"], default="onnx",
                     help="onnx: model.onnx + tokenizer + label schema + model card, beside the version's folder "
                          "(<folder>-onnx); merged: LoRA folded into a plain transformers folder (<folder>-merged)")
    exp.add_argument("--int8", action="store_true",
                     help="also write a dynamically quantised int8 model, with its F1 change on the test split "
                          "and its speed in the model card (never the default runtime)")
    exp.add_argument("--exporter", choices=["dynamo", "legacy"], default="dynamo",
                     help="torch.onnx exporter (default dynamo; legacy = the TorchScript one)")
    exp.set_defaults(func=cmd_export)

    pre = sub.add_parser("preannotate", help="store rule output as pre-annotations (source rule) of a project")
    pre.add_argument("--project", required=True)
    pre.set_defaults(func=cmd_preannotate)

    push = sub.add_parser("push", help="send a queue batch to Label Studio with pre-annotations (server or file)")
    push.add_argument("--project", required=True)
    push.add_argument("--batch", type=int, help="queue batch id (the Label Studio page lists them)")
    push.add_argument("--top", type=int, help="make a new batch of the K best-ranked documents of the latest scoring")
    push.add_argument("--strategy", help="with --top: the strategy whose ranking is used (default: the run's first)")
    push.add_argument("--out", help="write a Label Studio import file instead of sending to a server")
    push.add_argument("--url", help="Label Studio URL (default $REPORTLENS_LS_URL); token: $REPORTLENS_LS_TOKEN")
    push.add_argument("--ls-project", type=int, help="link this existing Label Studio project id")
    push.add_argument("--new-ls-project", action="store_true", help="create a new Label Studio project and link it")
    push.set_defaults(func=cmd_push)

    pull = sub.add_parser("pull", help="import the finished annotations of the linked Label Studio project")
    pull.add_argument("--project", required=True)
    pull.add_argument("--url", help="Label Studio URL (default $REPORTLENS_LS_URL); token: $REPORTLENS_LS_TOKEN")
    pull.add_argument("--ls-project", type=int, help="pull this Label Studio project id instead of the linked one")
    pull.set_defaults(func=cmd_pull)

    for name, func, helptext in (("evaluate", cmd_evaluate, "entity-level metrics against an export's annotations"),
                                 ("predict", cmd_predict, "write an export back with predictions (pre-annotations)")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("export")
        sp.add_argument("--model", help="model version id (or a name like v3 with --project)")
        sp.add_argument("--project", help="project whose active model version is used")
        if name == "predict":
            sp.add_argument("--out", required=True, help="Label Studio import file to write")
        _runtime_flag(sp)
        sp.set_defaults(func=func)
    _add_people_commands(sub)
    _add_serve_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from services.auth import cli_actor, set_process_actor

    set_process_actor(cli_actor())
    try:
        return args.func(args)
    except ReportLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"error: {exc.filename or exc}: no such file. Check the path.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    try:
        size_process_threads(ProcessKind.CLI)  # all cores (or OMP_NUM_THREADS); a worker started takes its share
    except ReportLensError as exc:  # a bad OMP_NUM_THREADS
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(main())
