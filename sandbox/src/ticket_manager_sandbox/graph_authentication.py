"""The Authentication-Results header Exchange Online stamps on mail from the internet.

Exchange checks SPF, DKIM and DMARC and its own composite authentication (compauth), and
prepends one header with the results, above anything the sender wrote (a sender may write
its own Authentication-Results lines; only the topmost one is Exchange's). Exchange's header
has no authserv-id, and ``action=`` says what the From domain's DMARC policy asked for.
The emulator has no DNS: every domain passes unless a test says it publishes a DMARC policy
and the message does not align (``GraphEmulator.spoofed_domains``).
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.utils import getaddresses

# Documentation addresses (RFC 5737): the "sender IP" Exchange names.
SENDER_IP = "192.0.2.25"
# What a DMARC policy (p=) becomes in Exchange's action= (p=reject is honoured as reject).
ACTIONS = {"reject": "reject", "quarantine": "quarantine", "none": "none"}


def from_domain(raw: bytes) -> str | None:
    """The domain of the message's From address, lower-cased."""
    headers = BytesHeaderParser().parsebytes(raw)
    addresses = getaddresses(headers.get_all("From") or [])
    address = addresses[0][1] if addresses else ""
    return address.rsplit("@", 1)[1].lower() if "@" in address else None


def authentication_results(domain: str, published_policy: str | None) -> str:
    """The header value Exchange writes: a pass, or a failure under ``published_policy``."""
    if published_policy is None:
        return (
            f"spf=pass (sender IP is {SENDER_IP}) smtp.mailfrom={domain}; "
            f"dkim=pass (signature was verified) header.d={domain};"
            f"dmarc=pass action=none header.from={domain};compauth=pass reason=100"
        )
    action = ACTIONS.get(published_policy, "none")
    return (
        f"spf=fail (sender IP is {SENDER_IP}) smtp.mailfrom={domain}; "
        f"dkim=none (message not signed) header.d=none;"
        f"dmarc=fail action={action} header.from={domain};compauth=fail reason=000"
    )


def stamp(raw: bytes, spoofed_domains: dict[str, str]) -> bytes:
    """``raw`` with Exchange's Authentication-Results prepended (From's domain decides)."""
    domain = from_domain(raw)
    if domain is None:
        return raw
    value = authentication_results(domain, spoofed_domains.get(domain))
    return f"Authentication-Results: {value}\r\n".encode() + raw
