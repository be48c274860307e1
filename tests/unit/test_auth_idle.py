"""Idle expiry of signed-in sessions (services.people.IdleClock, REPORTLENS_SESSION_IDLE_MINUTES) and the name a
decision is stored under (acting_name)."""

from __future__ import annotations

import pytest

from core.auth import Actor
from core.types import ReportLensError
from services.auth import act_as
from services.people import ENV_IDLE_MINUTES, IdleClock, acting_name, idle_minutes


def test_idle_minutes_setting() -> None:
    assert idle_minutes({}) == 30
    assert idle_minutes({ENV_IDLE_MINUTES: " 12.5 "}) == 12.5
    assert idle_minutes({ENV_IDLE_MINUTES: "0"}) == 0
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(ReportLensError, match=ENV_IDLE_MINUTES):
            idle_minutes({ENV_IDLE_MINUTES: bad})


def test_activity_keeps_a_sign_in_alive_and_idleness_ends_it() -> None:
    clock = IdleClock(minutes=10)
    key = IdleClock.key({"sub": "ann", "iat": 1000})
    assert key == ("ann", 1000.0)
    assert not clock.expired(key, now=1000 + 599)  # never seen: idle since issued
    clock.touch(key, now=1500)
    assert not clock.expired(key, now=1500 + 600)  # exactly the limit is still fine
    assert clock.expired(key, now=1500 + 601)
    clock.touch(key, now=1500 + 602)
    assert clock.expired(key, now=1500 + 603)  # expired stays expired: only a new sign-in goes on
    fresh = IdleClock.key({"sub": "ann", "iat": 2200})
    assert not clock.expired(fresh, now=2201)


def test_a_cookie_older_than_the_idle_time_needs_a_new_sign_in_after_a_restart() -> None:
    assert IdleClock(minutes=30).expired(("ann", 0.0), now=31 * 60)
    assert not IdleClock(minutes=0).expired(("ann", 0.0), now=10**9)  # 0: no expiry
    assert not IdleClock(minutes=1).expired(IdleClock.key({"sub": "ann"}), now=10**9)  # no iat: from now


def test_acting_name_is_the_signed_in_subject_whatever_is_typed() -> None:
    with act_as(Actor("cleo", user_id=3)):
        assert acting_name("dr. someone else") == "cleo" and acting_name(None) == "cleo"
    with act_as(Actor.everyone("local:me")):
        assert acting_name("dr. lee") == "dr. lee" and acting_name("  ") == "local:me"
    with act_as(None):
        assert acting_name(None) == ""
