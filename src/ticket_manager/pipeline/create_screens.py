"""Fit a new issue's fields to the project's create screen, as real Jira sites configure it.

A screen may lack labels or priority (Jira refuses a field that is not on it) and may carry
required custom fields (Jira refuses a create without them). The screen is read from the
create metadata (cached by the client); fields not on it are left out, required custom
fields are filled from ``JIRA_CUSTOM_FIELDS`` (by field id or name), and a required field
that nothing fills is named before Jira is asked.
"""

from __future__ import annotations

from collections.abc import Mapping

from ticket_manager.jira.client import ScreenField
from ticket_manager.jira.errors import JiraRejectedError

# Fields Jira fills itself when they are left out (the create metadata may call them required).
FILLED_BY_JIRA = frozenset({"project", "issuetype", "reporter", "priority"})


def unfillable(screen: Mapping[str, ScreenField], fields: Mapping, custom: Mapping) -> list[str]:
    """Names of required fields without a default that neither the email nor config fills."""
    missing = []
    for field in screen.values():
        if not field.required or field.has_default or field.id in FILLED_BY_JIRA:
            continue
        if field.id in fields or field.id in custom or field.name in custom:
            continue
        missing.append(field.name)
    return missing


def fit_to_screen(
    fields: dict, screen: Mapping[str, ScreenField], custom: Mapping[str, object]
) -> dict:
    """``fields`` with only what the screen shows, plus the configured custom values."""
    fitted = {k: v for k, v in fields.items() if k in screen or k in ("project", "issuetype")}
    for field in screen.values():
        if field.id in fitted:
            continue
        if field.id in custom:
            fitted[field.id] = custom[field.id]
        elif field.name in custom:
            fitted[field.id] = custom[field.name]
    missing = unfillable(screen, fitted, {})
    if missing:
        raise JiraRejectedError(
            "the create screen requires fields the service cannot fill: "
            + ", ".join(missing)
            + " (set them in JIRA_CUSTOM_FIELDS)",
            status=400,
        )
    return fitted
