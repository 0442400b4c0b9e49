"""Routing rules as data: which board, type and fields an email gets, read from a TOML file.

``ROUTING_RULES`` names the file. Rules are read top to bottom and the first whose every
condition matches decides; an email no rule matches is routed as without a file
(``MAILBOX_BOARDS``, ``JIRA_DEFAULT_BOARD``, the category in the subject). A condition
with several values matches when any of them does. See docs/routing.md.

    [[rules]]
    name = "billing"
    match.recipient = ["billing@example.com"]   # To, Cc or Delivered-To
    set.board = "JIRA_BILLING_BOARD"
    set.labels = ["billing"]
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rules are read with the configuration, below the Graph client's layer
    from ticket_manager.graph.messages import MailMessage

MATCH_KEYS = ("recipient", "sender", "subject", "body", "mailbox")
SET_KEYS = (
    "board",
    "issue_type",
    "request_type",
    "priority",
    "labels",
    "components",
    "assignee",
    "category",
)
_LIST_SET_KEYS = ("labels", "components")
# The ledger's rule column holds 64 characters: "route:" and the name.
MAX_NAME = 58
_LABEL = re.compile(r"^\S+$")
_DOMAIN = re.compile(r"^@?[a-z0-9.-]+\.[a-z]{2,63}$", re.I)


class RoutingError(ValueError):
    """The rules file is unusable; the message names the rule and the problem in one line."""


@dataclass(frozen=True)
class Rule:
    """One rule: its conditions (each a tuple of alternatives) and what it sets."""

    name: str
    recipients: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    subject: re.Pattern | None = None
    body: re.Pattern | None = None
    mailboxes: tuple[str, ...] = ()
    sets: dict = field(default_factory=dict)

    def matches(self, message: MailMessage) -> bool:
        if self.mailboxes and message.mailbox.lower() not in self.mailboxes:
            return False
        if self.recipients and not (recipients_of(message) & set(self.recipients)):
            return False
        if self.senders and not _sender_matches(message, self.senders):
            return False
        if self.subject is not None and not self.subject.search(message.subject or ""):
            return False
        return self.body is None or bool(self.body.search(message.body or ""))


@dataclass(frozen=True)
class Route:
    """What the matching rule decided; None fields keep the configuration's defaults."""

    rule: str
    board: str | None = None
    issue_type: str | None = None
    request_type: str | None = None
    priority: str | None = None
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    assignee: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class RoutingRules:
    """The rules of one file, in order."""

    rules: tuple[Rule, ...]
    source: str = ""

    def route(self, message: MailMessage) -> Route | None:
        """The first matching rule's route, or None when no rule matches."""
        for rule in self.rules:
            if rule.matches(message):
                return Route(
                    rule=rule.name,
                    **{k: tuple(v) if k in _LIST_SET_KEYS else v for k, v in rule.sets.items()},
                )
        return None


def recipients_of(message: MailMessage) -> set[str]:
    """Every address the email was for: To, Cc, and Delivered-To (aliases of a shared box)."""
    found = {a.address.lower() for a in (*message.to, *message.cc)}
    for value in message.header_values("Delivered-To") + message.header_values("X-Original-To"):
        found.add(value.strip().strip("<>").lower())
    return found


def _sender_matches(message: MailMessage, senders: tuple[str, ...]) -> bool:
    sender = message.from_ or message.sender
    if sender is None:
        return False
    address = sender.address.lower()
    domain = address.rpartition("@")[2]
    for wanted in senders:
        if "@" in wanted and not wanted.startswith("@"):
            if address == wanted:
                return True
        elif domain == wanted.lstrip("@") or domain.endswith("." + wanted.lstrip("@")):
            return True
    return False


def load_rules(path: str, *, board_keys: tuple[str, ...]) -> RoutingRules:
    """Read and check the rules file; RoutingError names the first problem found."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RoutingError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RoutingError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(raw) - {"rules"}
    if unknown:
        raise RoutingError(f"unknown top-level key {sorted(unknown)[0]!r} (expected [[rules]])")
    items = raw.get("rules", [])
    if not isinstance(items, list):
        raise RoutingError("rules must be an array of tables ([[rules]])")
    rules = [_rule(n, item, board_keys) for n, item in enumerate(items, start=1)]
    names = [r.name for r in rules]
    for n, name in enumerate(names, start=1):
        if names.index(name) != n - 1:
            raise RoutingError(
                f"rule {n} ({name!r}): the name is used by rule {names.index(name) + 1}"
            )
    return RoutingRules(tuple(rules), source=path)


def _rule(n: int, item: object, board_keys: tuple[str, ...]) -> Rule:
    if not isinstance(item, dict):
        raise RoutingError(f"rule {n}: expected a table")
    name = item.get("name")
    where = f"rule {n}" + (f" ({name!r})" if isinstance(name, str) else "")

    def fail(problem: str) -> RoutingError:
        return RoutingError(f"{where}: {problem}")

    if not isinstance(name, str) or not name.strip():
        raise fail("needs a name")
    if len(name.strip()) > MAX_NAME:
        raise fail(f"the name is longer than {MAX_NAME} characters (the ledger keeps route:NAME)")
    unknown = set(item) - {"name", "match", "set"}
    if unknown:
        raise fail(f"unknown key {sorted(unknown)[0]!r} (expected name, match, set)")
    match = item.get("match", {})
    sets = item.get("set", {})
    if not isinstance(match, dict) or not isinstance(sets, dict):
        raise fail("match and set must be tables")
    for key in match:
        if key not in MATCH_KEYS:
            raise fail(f"unknown condition match.{key} (expected {', '.join(MATCH_KEYS)})")
    for key in sets:
        if key not in SET_KEYS:
            raise fail(f"unknown setting set.{key} (expected {', '.join(SET_KEYS)})")
    if not sets:
        raise fail("sets nothing: give at least one set.* value")

    def strings(key: str, value: object) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else value
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v.strip() for v in values)
        ):
            raise fail(f"{key} must be a non-empty string or list of strings")
        return tuple(v.strip().lower() for v in values)

    def pattern(key: str, value: object) -> re.Pattern:
        if not isinstance(value, str) or not value:
            raise fail(f"match.{key} must be a regular expression string")
        try:
            return re.compile(value)
        except re.error as exc:
            raise fail(f"match.{key} is not a valid regular expression: {exc}") from None

    recipients = strings("match.recipient", match["recipient"]) if "recipient" in match else ()
    for address in recipients:
        if "@" not in address:
            raise fail(f"match.recipient {address!r} is not an email address")
    senders = strings("match.sender", match["sender"]) if "sender" in match else ()
    for sender in senders:
        if "@" not in sender.lstrip("@") and not _DOMAIN.match(sender):
            raise fail(f"match.sender {sender!r} is neither an address nor a domain")
    mailboxes = strings("match.mailbox", match["mailbox"]) if "mailbox" in match else ()
    checked: dict = {}
    for key, value in sets.items():
        if key in _LIST_SET_KEYS:
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                raise fail(f"set.{key} must be a string or a list of strings")
            if key == "labels" and not all(_LABEL.match(v) for v in values):
                raise fail("set.labels: Jira labels cannot contain spaces")
            checked[key] = list(values)
        else:
            if not isinstance(value, str) or not value.strip():
                raise fail(f"set.{key} must be a non-empty string")
            checked[key] = value.strip()
    board = checked.get("board")
    if board and not board.lower().startswith("project:") and board not in board_keys:
        raise fail(
            f"set.board {board!r} is neither a key listed in JIRA_BOARDS "
            f"({', '.join(board_keys) or 'none'}) nor project:KEY"
        )
    if "category" in checked and not _LABEL.match(checked["category"]):
        raise fail("set.category: a category is a label and cannot contain spaces")
    return Rule(
        name=name.strip(),
        recipients=recipients,
        senders=senders,
        subject=pattern("subject", match["subject"]) if "subject" in match else None,
        body=pattern("body", match["body"]) if "body" in match else None,
        mailboxes=mailboxes,
        sets=checked,
    )


def apply_route(fields: dict, route: Route, categories: tuple[str, ...]) -> dict:
    """The issue fields with what the route sets (type, priority, labels, components).

    The route's category replaces the one the subject named; its labels are added.
    """
    fields = dict(fields)
    if route.issue_type:
        fields["issuetype"] = {"name": route.issue_type}
    if route.priority:
        fields["priority"] = {"name": route.priority}
    labels = list(fields.get("labels") or [])
    if route.category:
        labels = [label for label in labels if label not in categories]
        labels.append(route.category)
    labels.extend(route.labels)
    if labels or "labels" in fields:
        fields["labels"] = list(dict.fromkeys(labels))
    if route.components:
        fields["components"] = [{"name": c} for c in route.components]
    return fields
