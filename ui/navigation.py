"""The page table: every page of the app once, with its section, title, icon, URL and a one-line description.

``app.py`` builds ``st.navigation`` from it and the Overview page lists it, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class PageEntry:
    path: str  # the page script, relative to the repository root
    title: str
    icon: str
    section: str
    description: str
    url_path: str | None = None  # None: the default page (served at "/")

    @property
    def default(self) -> bool:
        return self.url_path is None


PAGES: tuple[PageEntry, ...] = (
    PageEntry("pages/home.py", "Overview", "🏠", "ReportLens",
              "What ReportLens does and the projects in the database."),
    PageEntry("pages/import_data.py", "Import", "📥", "Data",
              "Label Studio exports (or DICOM SR, brat), validated and stored.", "import"),
    PageEntry("pages/dataset.py", "Dataset", "🗂️", "Data",
              "Documents, labels and their token-aligned BIO view.", "dataset"),
    PageEntry("pages/train.py", "Train", "🏋️", "Models",
              "Fine-tune with LoRA in a background job; watch loss and dev F1.", "train"),
    PageEntry("pages/models.py", "Models", "📊", "Models",
              "Compare versions, open their errors, activate one, export it.", "models"),
    PageEntry("pages/explain.py", "Explain", "🔍", "Models",
              "Attention maps and feature importances for any version and report.", "explain"),
    PageEntry("pages/queue.py", "Queue", "🎯", "Annotate",
              "Rank unlabeled reports by uncertainty; pick the next batch to label.", "queue"),
    PageEntry("pages/review.py", "Review", "🩺", "Annotate",
              "Accept or correct extracted entities; decisions become training data.", "review"),
    PageEntry("pages/labelstudio.py", "Label Studio", "🔁", "Annotate",
              "Send a batch to Label Studio as pre-annotations; pull the finished annotations back.", "labelstudio"),
)


def page(path: str) -> PageEntry:
    """The entry of the page script ``path`` (e.g. ``"pages/import_data.py"``), for links between pages."""
    for entry in PAGES:
        if entry.path == path:
            return entry
    raise KeyError(f"{path} is not in ui.navigation.PAGES; add it there (app.py and the Overview read that table).")


def navigation() -> dict[str, list[st.Page]]:
    """``st.navigation``'s argument: the pages by section, in table order."""
    sections: dict[str, list[st.Page]] = {}
    for e in PAGES:
        sections.setdefault(e.section, []).append(
            st.Page(e.path, title=e.title, icon=e.icon, url_path=e.url_path, default=e.default))
    return sections
