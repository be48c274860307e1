"""app.py sizes torch's threads before any page runs (core.threads): a bad REPORTLENS_APP_THREADS is a message on the
page, not a traceback; a good one reaches the environment torch reads when it loads."""

from __future__ import annotations

import os


def test_bad_app_threads_setting_is_a_message(open_page, monkeypatch) -> None:
    monkeypatch.setenv("REPORTLENS_APP_THREADS", "lots")
    at = open_page()
    assert not at.exception, at.exception
    assert any("REPORTLENS_APP_THREADS='lots' is not a whole number" in e.value for e in at.error)


def test_app_threads_setting_is_exported_before_torch_loads(open_page, monkeypatch) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "REPORTLENS_THREADS_ROLE", "REPORTLENS_USER_OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)  # restored after the test, whatever the app writes
    monkeypatch.setenv("REPORTLENS_APP_THREADS", "1")
    at = open_page()
    assert not at.exception, at.exception
    assert (os.environ["OMP_NUM_THREADS"], os.environ["REPORTLENS_THREADS_ROLE"]) == ("1", "app")
