"""A debug print, an f-string or a log of these objects must not show the secret they hold."""

from __future__ import annotations

from lgo.api.routers.psc import CallbackRequest
from lgo.national.psc import CibaStart
from lgo.services.psc_login import _Grant, _PendingCiba, _PendingPage

SECRET = "s3cr3t-" + "value-that-must-not-show"


def test_dataclasses_holding_secrets_hide_them() -> None:
    holders: list[object] = [
        _Grant(refresh_token=SECRET, rpps="10001234567"),
        _PendingPage(verifier=SECRET, nonce=SECRET, expires_at=1.0),
        _PendingCiba(auth_req_id=SECRET, expires_at=1.0, interval=5.0, next_poll_at=0.0),
        CibaStart(auth_req_id=SECRET, expires_in=120, interval=5),
    ]
    for holder in holders:
        assert SECRET not in repr(holder)
        assert SECRET not in str(holder)
    assert "10001234567" in repr(holders[0])  # ids stay visible for debugging


def test_authorization_code_is_not_in_the_request_model_repr() -> None:
    body = CallbackRequest(code=SECRET, state="st-1")
    assert SECRET not in repr(body)
    assert body.code == SECRET
