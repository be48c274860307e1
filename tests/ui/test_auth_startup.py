"""app.py's start-up rule (ui/auth.py, services/auth.py): single-user on loopback, refused elsewhere without
sign-in, with the reason and the fix on the page and nothing else run."""

from __future__ import annotations

import pytest
from streamlit import config

from services import auth


@pytest.fixture
def address():
    before, actor = config.get_option("server.address"), auth.current_actor()

    def set_to(value: str) -> None:
        config.set_option("server.address", value)

    yield set_to
    config.set_option("server.address", before)
    auth.set_process_actor(actor)  # the session's test actor (tests/conftest.py)


def test_loopback_is_single_user_as_the_local_os_user(open_page, address, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(auth.ENV_AUTH_SECRETS, str(tmp_path / "absent.toml"))
    address("127.0.0.1")
    at = open_page()
    assert not at.exception and not at.error
    assert auth.current_actor() == auth.local_actor()


def test_another_address_without_sign_in_is_refused(open_page, address, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(auth.ENV_AUTH_SECRETS, str(tmp_path / "absent.toml"))
    address("0.0.0.0")
    auth.set_process_actor(None)
    at = open_page()
    assert not at.exception
    assert [e.value for e in at.error] and "Refusing to listen on 0.0.0.0" in at.error[0].value
    assert "[auth]" in at.error[0].value and not at.title  # the pages never ran
    assert auth.current_actor() is None
