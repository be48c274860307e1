"""The page table: every page of the app once, with its section, title, icon, URL, a one-line description and the
permission it needs (``core.auth.ROLE_PERMISSIONS`` says which roles grant it).

``app.py`` builds ``st.navigation`` from it and the Overview page lists it, so the two cannot disagree. A person sees
only the pages their roles allow (:func:`visible_pages`); the others stay in ``st.navigation`` as hidden pages, so
a bookmark or a direct URL to one, or a link from another page, shows a clear refusal (:func:`run`) instead of
Streamlit's "Page not found", and the services refuse the calls anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.auth import Actor, Permission, roles_for

P = Permission


@dataclass(frozen=True)
class PageEntry:
    path: str  # the page script, relative to the repository root
    title: str
    icon: str
    section: str
    description: str
    url_path: str | None = None  # None: the default page (served at "/")
    permission: Permission = Permission.VIEW  # what a person needs to use the page

    @property
    def default(self) -> bool:
        return self.url_path is None


PAGES: tuple[PageEntry, ...] = (
    PageEntry("pages/home.py", "Overview", "🏠", "ReportLens",
              "What ReportLens does and the projects in the database.", None, P.VIEW),
    PageEntry("pages/import_data.py", "Import", "📥", "Data",
              "Label Studio exports (or DICOM SR, brat), validated and stored.", "import", P.IMPORT),
    PageEntry("pages/dataset.py", "Dataset", "🗂️", "Data",
              "Documents, labels and their token-aligned BIO view.", "dataset", P.DATASET),
    PageEntry("pages/train.py", "Train", "🏋️", "Models",
              "Fine-tune with LoRA in a background job; watch loss and dev F1.", "train", P.TRAIN),
    PageEntry("pages/models.py", "Models", "📊", "Models",
              "Compare versions, open their errors, activate one, export it.", "models", P.MODELS),
    PageEntry("pages/explain.py", "Explain", "🔍", "Models",
              "Attention maps and feature importances for any version and report.", "explain", P.EXPLAIN),
    PageEntry("pages/queue.py", "Queue", "🎯", "Annotate",
              "Rank unlabeled reports by uncertainty; pick the next batch to label.", "queue", P.QUEUE),
    PageEntry("pages/review.py", "Review", "🩺", "Annotate",
              "Accept or correct extracted entities; decisions become training data.", "review", P.REVIEW),
    PageEntry("pages/labelstudio.py", "Label Studio", "🔁", "Annotate",
              "Send a batch to Label Studio as pre-annotations; pull the finished annotations back.", "labelstudio",
              P.LABEL_STUDIO),
    PageEntry("pages/users.py", "Users", "👥", "People",
              "Who has signed in, their roles; grant, revoke, deactivate.", "users", P.USERS),
    PageEntry("pages/audit.py", "Audit", "📜", "People",
              "Who did what, when, on which project: filter and download.", "audit", P.AUDIT),
)


def page(path: str) -> PageEntry:
    """The entry of the page script ``path`` (e.g. ``"pages/import_data.py"``), for links between pages."""
    for entry in PAGES:
        if entry.path == path:
            return entry
    raise KeyError(f"{path} is not in ui.navigation.PAGES; add it there (app.py and the Overview read that table).")


def allowed(entry: PageEntry, actor: Actor | None) -> bool:
    """Whether ``actor`` may use the page: a role that grants its permission, everywhere or in some project (the
    services then check the project of each call)."""
    return actor is not None and (actor.may(entry.permission) or actor.needs_project(entry.permission))


def visible_pages(actor: Actor | None) -> tuple[PageEntry, ...]:
    """The pages ``actor`` may use, in table order (what their navigation and the Overview list)."""
    return tuple(e for e in PAGES if allowed(e, actor))


def navigation(actor: Actor | None = None) -> dict[str, list[st.Page]]:
    """``st.navigation``'s argument: every page by section, in table order; those ``actor`` (default: who acts now)
    may not use are hidden from the menu, and :func:`run` refuses them."""
    if actor is None:
        from services.auth import current_actor

        actor = current_actor()
    sections: dict[str, list[st.Page]] = {}
    for e in PAGES:
        sections.setdefault(e.section, []).append(
            st.Page(e.path, title=e.title, icon=e.icon, url_path=e.url_path, default=e.default,
                    visibility="visible" if allowed(e, actor) else "hidden"))
    return sections


def entry_of(selected: st.Page) -> PageEntry:
    """The table entry of the page ``st.navigation`` chose."""
    for e in PAGES:
        if (e.url_path or "") == (selected.url_path or ""):
            return e
    raise KeyError(f"st.navigation chose {selected.url_path!r}, which is not in ui.navigation.PAGES.")


def refusal(entry: PageEntry, actor: Actor | None) -> str:
    """What a person who may not use ``entry`` reads instead: which role it needs and whom to ask."""
    needed = " or ".join(r.value for r in roles_for(entry.permission))
    if actor is None:
        return f"Sign in to use {entry.title}."
    held = sorted(actor.roles_in())
    if not held:
        return (f"You ({actor.label}) are signed in but hold no role yet, so {entry.title} is closed to you: ask an "
                "admin to give you one (Users page), then reload.")
    return (f"You need the {needed} role for {entry.title}; you hold {', '.join(held)}. Ask an admin to give it to "
            "you (Users page, or cli.py users grant), then reload.")


def run(selected: st.Page, actor: Actor | None = None) -> None:
    """Run the chosen page, or, when ``actor`` (default: who acts now) may not use it (a bookmark, a typed URL, an
    old link), say so and record the refusal in the audit trail."""
    if actor is None:
        from services.auth import current_actor

        actor = current_actor()
    entry = entry_of(selected)
    if allowed(entry, actor):
        selected.run()
        return
    st.title(entry.title)
    st.error(refusal(entry, actor), icon="🔒")
    from services.auth import record
    from ui.state import engine

    record("page_refused", actor=actor, engine=engine(), outcome="refused",
           details={"page": entry.url_path or "overview", "permission": entry.permission.value})
