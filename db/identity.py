"""Which stored documents the tasks of one import batch are (the rules of :mod:`core.identity`, in SQL), and the
stale flags of annotations whose document text changed. Used inside the importer's write transaction."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from core.identity import LEGACY_SOURCE
from db.models import Annotation as AnnotationRow
from db.models import Document as DocumentModel

DOCS, ANNS = DocumentModel.__table__, AnnotationRow.__table__
Key = tuple[Any, ...]  # ("id", source_key, task_id) or ("hash", text_hash)


def text_hash(text: str) -> str:
    """The sha256 of a text: the identity of a task without an id, and how a changed text is seen."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Wanted:
    """What the importer looks up: the item's key and its text hash."""

    key: Key
    text_hash: str


@dataclass(frozen=True)
class Match:
    """A stored document a task lands on. ``same_source``: found under the task's own key (or a legacy document
    with its task id), so a different text is a text change; otherwise the document was found by its text."""

    row: dict[str, Any]
    same_source: bool


def find_documents(s: Session, project_id: int, wanted: list[Wanted],
                   taken: set[int] | frozenset[int] = frozenset()) -> dict[Key, Match]:
    """The stored document of each key, by these rules, in order (each document is matched at most once, and never
    one in ``taken``: the documents earlier tasks of the same file landed on):

    1. a task with an id: the document with the same ``(source_key, ls_task_id)``;
    2. else a ``legacy`` document (stored before source keys) with that task id: the task's source claims it;
    3. else a document with that task id and the same text, from any source (a pull of a project that was
       imported from a file: the same report);
    4. else (and for tasks without an id) a document with the same text, preferring one without a task id.
    """
    cols = (DOCS.c.id, DOCS.c.ls_task_id, DOCS.c.source_key, DOCS.c.text_hash, DOCS.c.meta)
    found: dict[Key, Match] = {}
    claimed: set[int] = set(taken)
    ids = sorted({w.key[2] for w in wanted if w.key[0] == "id"})
    by_id: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        q = select(*cols).where(DOCS.c.project_id == project_id, DOCS.c.ls_task_id.in_(ids)).order_by(DOCS.c.id)
        for row in s.execute(q).mappings():
            by_id[row["ls_task_id"]].append(dict(row))
    for rule in (lambda r, w: r["source_key"] == w.key[1], lambda r, w: r["source_key"] == LEGACY_SOURCE,
                 lambda r, w: r["text_hash"] == w.text_hash):
        for w in wanted:
            if w.key[0] != "id" or w.key in found:
                continue
            row = next((r for r in by_id.get(w.key[2], []) if r["id"] not in claimed and rule(r, w)), None)
            if row is not None:
                same = row["source_key"] in (w.key[1], LEGACY_SOURCE)
                found[w.key] = Match(row, same)
                claimed.add(row["id"])
    hashes = {w.text_hash for w in wanted if w.key not in found}
    if hashes:
        q = (select(*cols).where(DOCS.c.project_id == project_id, DOCS.c.text_hash.in_(hashes))
             .order_by(DOCS.c.ls_task_id.is_not(None), DOCS.c.id))
        by_hash: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in s.execute(q).mappings():
            by_hash[row["text_hash"]].append(dict(row))
        for w in sorted(wanted, key=lambda w: w.key[0] != "id"):  # tasks with ids adopt first, then the id-less
            if w.key in found:
                continue
            for row in by_hash.get(w.text_hash, []):
                if row["id"] not in claimed and (w.key[0] == "hash" or row["ls_task_id"] is None):
                    found[w.key] = Match(row, False)
                    claimed.add(row["id"])
                    break
    return found


def keep_earlier_text(s: Session, doc_old_hash: dict[int, str]) -> None:
    """Before a document's text changes: its annotations made on the current text say so (``text_hash``)."""
    if doc_old_hash:
        s.execute(update(ANNS).where(ANNS.c.document_id == bindparam("b_doc"), ANNS.c.text_hash.is_(None))
                  .values(text_hash=bindparam("b_hash")),
                  [{"b_doc": d, "b_hash": h} for d, h in doc_old_hash.items()])


def mark_stale(s: Session, doc_new_hash: dict[int, str]) -> None:
    """After a document's text changed: an annotation is stale unless it was made on the new text."""
    if doc_new_hash:
        s.execute(update(ANNS).where(ANNS.c.document_id == bindparam("b_doc"))
                  .values(stale=ANNS.c.text_hash != bindparam("b_hash")),
                  [{"b_doc": d, "b_hash": h} for d, h in doc_new_hash.items()])
