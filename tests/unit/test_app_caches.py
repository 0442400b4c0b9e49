"""Caches belong to an app, not to the process that holds several apps."""

from __future__ import annotations

from ticket_manager import create_app
from ticket_manager.extensions import app_cache


def test_each_app_has_its_own_cache(tmp_path):
    # A check result cached by one app is not seen by another app in the same process
    first = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}"})
    second = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'b.db'}"})
    assert first.name == second.name  # the name cannot tell them apart
    with first.app_context():
        app_cache("sign_in")["state"] = (0.0, "failing: first app's tenant")
    with second.app_context():
        assert "state" not in app_cache("sign_in")
    with first.app_context():
        assert app_cache("sign_in")["state"][1] == "failing: first app's tenant"
