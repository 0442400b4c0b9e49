"""OData query options ($filter, $orderby, $select, $top, $skip) for the Graph emulator's messages.

Exchange supports only part of OData on messages and rejects the rest with specific error
codes; clients that build queries wrongly must see those errors here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


class GraphQueryError(Exception):
    """A request Graph would reject; carries the status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


MESSAGE_PROPERTIES = {
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "uniqueBody",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "internetMessageHeaders",
    "attachments",
    "singleValueExtendedProperties",
    "multiValueExtendedProperties",
}
_LOWER_PROPERTIES = {name.lower(): name for name in MESSAGE_PROPERTIES}

_FILTER_TYPES = {
    "receivedDateTime": "datetime",
    "sentDateTime": "datetime",
    "createdDateTime": "datetime",
    "lastModifiedDateTime": "datetime",
    "isRead": "bool",
    "isDraft": "bool",
    "hasAttachments": "bool",
    "internetMessageId": "string",
    "conversationId": "string",
    "subject": "string",
    "importance": "string",
    "parentFolderId": "string",
    "id": "string",
    "from/emailAddress/address": "string",
    "sender/emailAddress/address": "string",
    "flag/flagStatus": "string",
}
_LOWER_FILTER = {name.lower(): name for name in _FILTER_TYPES}
_OPERATORS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
}
_OPERATOR_NAMES = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_TOKEN = re.compile(r"'(?:[^']|'')*'|[()]|[^\s()]+")

Predicate = Callable[[dict], bool]


def _unknown_property(name: str) -> GraphQueryError:
    return GraphQueryError(
        400,
        "RequestBroker--ParseUri",
        f"Could not find a property named '{name}' on type 'microsoft.graph.message'.",
    )


def parse_datetime(text: str) -> datetime:
    """An OData DateTimeOffset literal (or a bare date) as an aware datetime."""
    value = text.strip()
    if len(value) == 10:
        value += "T00:00:00Z"
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _lookup(message: dict, path: str) -> Any:
    value: Any = message
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _clause(tokens: list[str]) -> tuple[str, Predicate]:
    while len(tokens) >= 2 and tokens[0] == "(" and tokens[-1] == ")":
        tokens = tokens[1:-1]
    if len(tokens) != 3:
        raise GraphQueryError(
            400,
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        )
    name, operator, literal = tokens[0], tokens[1].lower(), tokens[2]
    if "(" in name or name.lower() not in _LOWER_FILTER:
        if name.split("/")[0].lower() in _LOWER_PROPERTIES:
            raise GraphQueryError(
                400,
                "ErrorInvalidUrlQueryFilter",
                "The query filter contains one or more invalid nodes.",
            )
        raise _unknown_property(name)
    prop = _LOWER_FILTER[name.lower()]
    if operator not in _OPERATORS:
        raise GraphQueryError(
            400, "BadRequest", f"Syntax error at position {len(name) + 1} in '{operator}'."
        )
    kind = _FILTER_TYPES[prop]
    expected: Any
    if kind == "datetime":
        if literal.startswith("'"):
            raise GraphQueryError(
                400,
                "BadRequest",
                "A binary operator with incompatible types was detected. Found operand types "
                "'Edm.DateTimeOffset' and 'Edm.String' for operator kind "
                f"'{_OPERATOR_NAMES[operator]}'.",
            )
        try:
            expected = parse_datetime(literal)
        except ValueError as exc:
            raise GraphQueryError(
                400, "BadRequest", f"The DateTimeOffset text '{literal}' is invalid."
            ) from exc
    elif kind == "bool":
        if literal.lower() not in {"true", "false"}:
            raise GraphQueryError(
                400,
                "BadRequest",
                "A binary operator with incompatible types was detected. Found operand types "
                f"'Edm.Boolean' and 'Edm.String' for operator kind '{_OPERATOR_NAMES[operator]}'.",
            )
        expected = literal.lower() == "true"
    else:
        if not (literal.startswith("'") and literal.endswith("'") and len(literal) >= 2):
            raise GraphQueryError(
                400, "BadRequest", f"Syntax error: character '{literal}' is not valid."
            )
        expected = literal[1:-1].replace("''", "'")
    compare = _OPERATORS[operator]

    def predicate(message: dict) -> bool:
        actual = _lookup(message, prop)
        if kind == "datetime" and isinstance(actual, str):
            actual = parse_datetime(actual)
        if kind == "string" and isinstance(actual, str) and operator in {"eq", "ne"}:
            return compare(actual.lower(), str(expected).lower())
        return compare(actual, expected)

    return prop, predicate


def parse_filter(text: str) -> tuple[list[str], Predicate]:
    """Compile a $filter (comparisons joined by and/or) into the properties used and a test."""
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        raise GraphQueryError(400, "BadRequest", "Invalid filter clause: the clause is empty.")
    properties: list[str] = []
    disjunction: list[list[Predicate]] = [[]]
    current: list[str] = []

    def flush() -> None:
        if not current:
            raise GraphQueryError(400, "BadRequest", f"Syntax error in filter '{text}'.")
        prop, predicate = _clause(current)
        properties.append(prop)
        disjunction[-1].append(predicate)
        current.clear()

    for token in tokens:
        lowered = token.lower()
        if lowered == "and":
            flush()
        elif lowered == "or":
            flush()
            disjunction.append([])
        else:
            current.append(token)
    flush()

    def test(message: dict) -> bool:
        return any(all(p(message) for p in conjunction) for conjunction in disjunction)

    return properties, test


_ORDERABLE = {
    "receiveddatetime": "receivedDateTime",
    "sentdatetime": "sentDateTime",
    "createddatetime": "createdDateTime",
    "lastmodifieddatetime": "lastModifiedDateTime",
    "subject": "subject",
    "importance": "importance",
    "isread": "isRead",
    "from/emailaddress/address": "from/emailAddress/address",
    "from/emailaddress/name": "from/emailAddress/name",
}


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """$orderby as (property, descending) pairs."""
    result = []
    for item in (text or "").split(","):
        words = item.split()
        if not words:
            continue
        name = words[0]
        direction = words[1].lower() if len(words) > 1 else "asc"
        if name.lower() not in _ORDERABLE:
            raise _unknown_property(name)
        if direction not in {"asc", "desc"} or len(words) > 2:
            raise GraphQueryError(400, "BadRequest", f"Syntax error in $orderby '{text}'.")
        result.append((_ORDERABLE[name.lower()], direction == "desc"))
    return result


def check_filter_order(filter_props: list[str], order: list[tuple[str, bool]]) -> None:
    """Exchange's rule: $orderby properties must lead the $filter, in the same order."""
    order_props = [prop for prop, _ in order]
    if filter_props and order_props and filter_props[: len(order_props)] != order_props:
        raise GraphQueryError(
            400,
            "InefficientFilter",
            "The restriction or sort order is too complex for this operation.",
        )


def sort_messages(messages: list[dict], order: list[tuple[str, bool]]) -> list[dict]:
    """Stable multi-key sort of rendered messages."""
    result = list(messages)
    for prop, descending in reversed(order):
        result.sort(key=lambda m, p=prop: str(_lookup(m, p) or ""), reverse=descending)
    return result


def parse_select(text: str | None) -> list[str] | None:
    """$select as canonical message property names; None when everything is wanted."""
    if not text:
        return None
    names = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name.lower() not in _LOWER_PROPERTIES:
            raise _unknown_property(name)
        names.append(_LOWER_PROPERTIES[name.lower()])
    return names


def parse_int_option(name: str, value: str | None, *, minimum: int = 0) -> int | None:
    """An integer query option such as $top or $skip, with Graph's error for bad values."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise GraphQueryError(
            400, "BadRequest", f"Invalid value '{value}' for query option '{name}'."
        ) from exc
    if number < minimum:
        raise GraphQueryError(
            400, "BadRequest", f"Invalid value '{value}' for query option '{name}'."
        )
    return number
