"""What Exchange Online found out about an email's sender: its Authentication-Results.

Exchange checks SPF, DKIM, DMARC and its composite authentication (compauth) for mail from
the internet and prepends one ``Authentication-Results`` header, without an authserv-id:

    spf=pass (sender IP is 192.0.2.25) smtp.mailfrom=contoso.com; dkim=pass (signature was
    verified) header.d=contoso.com;dmarc=fail action=quarantine header.from=contoso.com;
    compauth=fail reason=000

A sender may add Authentication-Results lines of its own below it, so only the topmost one
is read. ``action=`` carries what the From domain's DMARC policy asks for (``reject``,
``quarantine``, ``oreject``, ``pct.reject``, ``pct.quarantine`` or ``none``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ticket_manager.graph.messages import MailMessage

HEADER = "authentication-results"
# The actions that mean the domain publishes p=reject or p=quarantine.
ENFORCED_ACTIONS = frozenset({"reject", "quarantine", "oreject", "pct.reject", "pct.quarantine"})
_RESULT = re.compile(r"\b(spf|dkim|dmarc|compauth)=([a-z]+)", re.IGNORECASE)
_PROPERTY = re.compile(r"\b(action|reason)=([a-z.0-9]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class SenderAuthentication:
    """The results Exchange recorded; None where it said nothing."""

    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None
    dmarc_action: str | None = None
    compauth: str | None = None
    compauth_reason: str | None = None

    @property
    def dmarc_failed_under_policy(self) -> bool:
        """DMARC failed and the domain asks receivers to reject or quarantine such mail."""
        return self.dmarc == "fail" and (self.dmarc_action or "") in ENFORCED_ACTIONS

    @property
    def failures(self) -> list[str]:
        """The checks that failed, as ``name=result`` (with DMARC's action)."""
        found = []
        if self.dmarc == "fail":
            found.append(f"dmarc=fail action={self.dmarc_action or 'none'}")
        if self.compauth == "fail":
            found.append(f"compauth=fail reason={self.compauth_reason or '?'}")
        return found


def read_authentication(message: MailMessage) -> SenderAuthentication | None:
    """Exchange's (topmost) Authentication-Results of ``message``, or None without one."""
    value = message.header(HEADER)
    if not value:
        return None
    text = _COMMENT.sub(" ", " ".join(value.split()))
    results: dict[str, str] = {}
    for part in text.split(";"):
        result = _RESULT.search(part)
        if result is None:
            continue
        method = result.group(1).lower()
        results.setdefault(method, result.group(2).lower())
        for name, prop in _PROPERTY.findall(part):
            results.setdefault(f"{method}.{name.lower()}", prop.lower())
    return SenderAuthentication(
        spf=results.get("spf"),
        dkim=results.get("dkim"),
        dmarc=results.get("dmarc"),
        dmarc_action=results.get("dmarc.action"),
        compauth=results.get("compauth"),
        compauth_reason=results.get("compauth.reason"),
    )
