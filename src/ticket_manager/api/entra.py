"""Microsoft Entra ID access tokens as an alternative to API keys (off unless configured)."""

from __future__ import annotations

from flask import Flask


def entra_validator(app: Flask):
    """The app's Entra ID token validator, or None when Entra ID sign-in is not configured."""
    return None
