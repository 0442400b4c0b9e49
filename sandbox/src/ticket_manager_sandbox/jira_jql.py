"""A real parser and evaluator for the subset of JQL the Jira emulator answers.

The product finds tickets with JQL (by project, status, labels, issue properties, dates);
string matching would let wrong queries pass. This module tokenizes and parses JQL into a
tree (AND/OR/NOT with parentheses, ``=`` ``!=`` ``~`` ``!~`` ``<`` ``<=`` ``>`` ``>=``
``IN`` ``NOT IN`` ``IS [NOT] EMPTY``, ``ORDER BY``), checks fields and values against the
emulator's catalog, and evaluates it over issue documents the emulator prepares. Errors carry
Jira's wording so clients see the same 400s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any


class JqlError(Exception):
    """An invalid or unsupported query; ``messages`` go into Jira's ``errorMessages``."""

    def __init__(self, *messages: str) -> None:
        super().__init__(messages[0] if messages else "invalid JQL")
        self.messages = list(messages)


KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
OPERATORS = ("!=", ">=", "<=", "!~", "=", "~", ">", "<")
# Characters Jira refuses outside quotes (a subset of its list: the ones no client relies on).
RESERVED_CHARACTERS = set("{}#^$%;?")

FIELD_ALIASES = {
    "issuekey": "key",
    "issue": "key",
    "type": "issuetype",
    "resolved": "resolutiondate",
    "createddate": "created",
    "updateddate": "updated",
}
FIELD_KINDS = {
    "project": "named",
    "key": "key",
    "id": "key",
    "labels": "labels",
    "status": "named",
    "statuscategory": "named",
    "priority": "named",
    "issuetype": "named",
    "resolution": "named",
    "reporter": "user",
    "assignee": "user",
    "creator": "user",
    "watcher": "user",
    "summary": "text",
    "description": "text",
    "comment": "text",
    "text": "text",
    "created": "date",
    "updated": "date",
    "resolutiondate": "date",
}
OPERATORS_BY_KIND = {
    "named": {"=", "!=", "in", "not in", "is", "is not"},
    "key": {"=", "!=", "in", "not in", "<", "<=", ">", ">=", "is", "is not"},
    "labels": {"=", "!=", "in", "not in", "is", "is not"},
    "user": {"=", "!=", "in", "not in", "is", "is not"},
    "text": {"~", "!~", "is", "is not"},
    "date": {"=", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"},
    "property": {"=", "!=", "~", "!~", "<", "<=", ">", ">=", "in", "not in", "is", "is not"},
}
ORDERABLE = {
    "key",
    "id",
    "created",
    "updated",
    "resolutiondate",
    "priority",
    "status",
    "summary",
    "issuetype",
    "project",
    "assignee",
    "reporter",
}
PROPERTY_FIELD = re.compile(r"^issue\.property\[(?P<key>[^\]]+)\](?:\.(?P<path>.+))?$", re.I)


@dataclass
class Token:
    kind: str  # "word", "string", "op", "(", ")", ",", "eof"
    value: str
    position: int
    text: str = ""  # as written, for error messages ("!" for a NOT written as "!")


VALID_OPERATORS = (
    "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', "
    "'IS' and 'IS NOT'."
)


def _where(jql: str, position: int) -> str:
    """Jira's ``(line L, character C)`` suffix for a 0-based offset into the query."""
    line = jql.count("\n", 0, position) + 1
    column = position - (jql.rfind("\n", 0, position) + 1) + 1
    return f"(line {line}, character {column})"


@dataclass
class Function:
    name: str
    args: list[str] = field(default_factory=list)


@dataclass
class Clause:
    field: str
    operator: str
    value: Any  # str | Function | list | None (EMPTY)


@dataclass
class BoolOp:
    op: str  # "and" | "or"
    children: list


@dataclass
class Not:
    child: Any


def _tokenize(jql: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(jql):
        char = jql[i]
        if char.isspace():
            i += 1
            continue
        if char in "(),":
            tokens.append(Token(char, char, i))
            i += 1
            continue
        if char in "\"'":
            value, i = _read_quoted(jql, i)
            tokens.append(Token("string", value, i))
            continue
        if jql.startswith("&&", i) or jql.startswith("||", i):
            tokens.append(Token("word", "and" if char == "&" else "or", i, jql[i : i + 2]))
            i += 2
            continue
        op = next((o for o in OPERATORS if jql.startswith(o, i)), None)
        if op:
            tokens.append(Token("op", op, i))
            i += len(op)
            continue
        if char == "!":
            tokens.append(Token("word", "not", i, "!"))
            i += 1
            continue
        start = i
        while i < len(jql) and not jql[i].isspace() and jql[i] not in "(),=!~<>\"'":
            if jql[i] == "[":
                end = jql.find("]", i)
                i = end + 1 if end != -1 else len(jql)
                continue
            if jql[i] == "\\" and i + 1 < len(jql):
                i += 2
                continue
            if jql[i] in RESERVED_CHARACTERS:
                break
            i += 1
        if i == start or (i < len(jql) and jql[i] in RESERVED_CHARACTERS):
            bad = jql[i] if i < len(jql) and jql[i] in RESERVED_CHARACTERS else char
            raise JqlError(
                f"Error in the JQL Query: The character '{bad}' is a reserved JQL character. "
                f"You must enclose it in a string or use the escape '\\u{ord(bad):04x}' instead. "
                f"{_where(jql, i)}"
            )
        tokens.append(Token("word", jql[start:i].replace("\\", ""), start))
    tokens.append(Token("eof", "", len(jql)))
    return tokens


def _read_quoted(jql: str, start: int) -> tuple[str, int]:
    quote = jql[start]
    out = []
    i = start + 1
    escapes = {"n": "\n", "t": "\t", "r": "\r"}
    while i < len(jql):
        char = jql[i]
        if char == "\\" and i + 1 < len(jql):
            nxt = jql[i + 1]
            if nxt == "u" and re.match(r"[0-9a-fA-F]{4}", jql[i + 2 : i + 6]):
                out.append(chr(int(jql[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(escapes.get(nxt, nxt))
            i += 2
            continue
        if char == quote:
            return "".join(out), i + 1
        out.append(char)
        i += 1
    unfinished = jql[start + 1 :].replace("\n", " ").replace("\r", " ")
    quoted = f" '{unfinished}'" if unfinished else ""
    raise JqlError(
        f"Error in the JQL Query: The quoted string{quoted} has not been completed. "
        f"{_where(jql, start)}"
    )


class _Parser:
    """Recursive descent over the token list; builds Clause/BoolOp/Not trees.

    Its errors use the wording of Jira's JQL parser ("Expecting X but got 'Y'. (line L,
    character C)", "Expecting X before the end of the query.").
    """

    def __init__(self, jql: str) -> None:
        self.jql = jql
        self.tokens = _tokenize(jql)
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def is_word(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.value.lower() in words

    def error(self, expected: str, *, at_end: str = "before", hint: str = "") -> JqlError:
        """Jira's message for an unexpected token; ``hint`` names what a quoted word would be."""
        token = self.peek()
        if token.kind == "eof":
            ending = (
                "at the end of the query." if at_end == "at" else "before the end of the query."
            )
            message = f"Expecting {expected} {ending}"
            if expected == "operator":
                message += f" {VALID_OPERATORS}"
            return JqlError(f"Error in the JQL Query: {message}")
        got = token.text or token.value
        message = f"Expecting {expected} but got '{got}'."
        if expected == "operator":
            message += f" {VALID_OPERATORS}"
        elif hint and (token.kind in "()," or token.value.lower() in KEYWORDS):
            message += f" You must surround '{got}' in quotation marks to use it as {hint}."
        return JqlError(f"Error in the JQL Query: {message} {_where(self.jql, token.position)}")

    def field_error(self) -> JqlError:
        return self.error("a field name", at_end="at", hint="a field name")

    def parse(self) -> tuple[Any, list[tuple[str, bool]]]:
        where = None
        if self.peek().kind != "eof" and not self.is_word("order"):
            where = self.parse_or()
        order: list[tuple[str, bool]] = []
        if self.is_word("order"):
            self.next()
            if not self.is_word("by"):
                raise self.error("'by'")
            self.next()
            while True:
                token = self.peek()
                if token.kind not in ("word", "string") or (
                    token.kind == "word" and token.value.lower() in KEYWORDS
                ):
                    raise self.field_error()
                self.next()
                descending = False
                if self.is_word("asc", "desc"):
                    descending = self.next().value.lower() == "desc"
                elif self.peek().kind not in ("eof", ","):
                    raise self.error("either 'ASC' or 'DESC'")
                order.append((token.value, descending))
                if self.peek().kind == "eof":
                    break
                if self.peek().kind != ",":
                    raise self.error("','")
                self.next()
        if self.peek().kind != "eof":
            raise self.error("either 'OR' or 'AND'")
        return where, order

    def parse_or(self) -> Any:
        children = [self.parse_and()]
        while self.is_word("or"):
            self.next()
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else BoolOp("or", children)

    def parse_and(self) -> Any:
        children = [self.parse_not()]
        while self.is_word("and"):
            self.next()
            children.append(self.parse_not())
        return children[0] if len(children) == 1 else BoolOp("and", children)

    def parse_not(self) -> Any:
        if self.is_word("not"):
            self.next()
            return Not(self.parse_not())
        if self.peek().kind == "(":
            self.next()
            inner = self.parse_or()
            if self.peek().kind != ")":
                raise self.error("')'")
            self.next()
            return inner
        return self.parse_clause()

    def parse_clause(self) -> Clause:
        token = self.peek()
        if token.kind not in ("word", "string") or (
            token.kind == "word" and token.value.lower() in KEYWORDS
        ):
            raise self.field_error()
        self.next()
        name = token.value
        op_token = self.peek()
        if op_token.kind == "op":
            self.next()
            return Clause(name, op_token.value, self.parse_operand())
        if self.is_word("in"):
            self.next()
            return Clause(name, "in", self.parse_operand())
        if self.is_word("not"):
            self.next()
            if not self.is_word("in"):
                raise self.error("'IN'")
            self.next()
            return Clause(name, "not in", self.parse_operand())
        if self.is_word("is"):
            self.next()
            operator = "is"
            if self.is_word("not"):
                self.next()
                operator = "is not"
            if not self.is_word("empty", "null"):
                raise self.error("'EMPTY'")
            self.next()
            return Clause(name, operator, None)
        raise self.error("operator")

    def parse_value(self) -> Any:
        token = self.peek()
        if token.kind == "string":
            self.next()
            return token.value
        lowered = token.value.lower()
        if token.kind != "word" or (lowered in KEYWORDS and lowered not in ("empty", "null")):
            raise self.error("either a value, list or function", hint="a value")
        self.next()
        if lowered in ("empty", "null"):
            return None
        if self.peek().kind == "(":
            self.next()
            return Function(lowered, self.parse_arguments())
        return token.value

    def parse_arguments(self) -> list[str]:
        args: list[str] = []
        if self.peek().kind == ")":
            self.next()
            return args
        while True:
            arg = self.peek()
            if arg.kind == "eof" and not args:
                raise self.error("')'")
            if arg.kind not in ("word", "string"):
                raise self.error("a function argument", at_end="at", hint="an argument")
            self.next()
            args.append(arg.value)
            if self.peek().kind == ",":
                self.next()
            elif self.peek().kind == ")":
                self.next()
                return args
            elif self.peek().kind == "eof":
                raise self.error("')'")
            else:
                raise self.error("')' or ','")

    def parse_operand(self) -> Any:
        """A value, function or list; whether the operator takes it is checked later."""
        return self.parse_list() if self.peek().kind == "(" else self.parse_value()

    def parse_list(self) -> list:
        self.next()
        values = []
        while True:
            values.append(self.parse_value())
            if self.peek().kind == ",":
                self.next()
                continue
            if self.peek().kind == ")":
                self.next()
                return values
            raise self.error("')'")


@dataclass
class Catalog:
    """What the query may refer to: known names per field, the caller, and the clock."""

    named_values: dict[str, set[str]]
    current_user: set[str]
    now: datetime
    user_exists: Callable[[str], bool] = lambda _value: True
    time_zone: tzinfo = UTC


@dataclass
class Query:
    """A compiled query: a filter over issue documents and an ordering."""

    where: Any
    order_by: list[tuple[str, bool]]
    catalog: Catalog

    def matches(self, doc: dict) -> bool:
        """Whether the issue document satisfies the WHERE part."""
        return self.where is None or _evaluate(self.where, doc, self.catalog)

    def sort(self, docs: Iterable[dict]) -> list[dict]:
        """Documents in ORDER BY order (newest first when no ORDER BY is given)."""
        result = sorted(docs, key=lambda d: d["id"], reverse=True)
        for name, descending in reversed(self.order_by):
            result.sort(key=lambda d, n=name: _sort_key(d, n), reverse=descending)
        return result

    @property
    def is_bounded(self) -> bool:
        """Whether the query restricts anything (search/jql refuses unbounded queries)."""
        return self.where is not None


def compile_jql(jql: str, catalog: Catalog) -> Query:
    """Parse and check ``jql``; raises JqlError with Jira's messages when it is invalid."""
    where, order_by = _Parser(jql or "").parse()
    errors: list[str] = []
    if where is not None:
        _check(where, catalog, errors)
    normalized_order = []
    for name, descending in order_by:
        canonical = _canonical_field(name)
        if canonical not in FIELD_KINDS and not PROPERTY_FIELD.match(name):
            errors.append(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        elif canonical not in ORDERABLE:
            errors.append(f"Field '{name}' does not support sorting.")
        normalized_order.append((canonical, descending))
    if errors:
        raise JqlError(*errors)
    return Query(where, normalized_order, catalog)


def _canonical_field(name: str) -> str:
    lowered = name.lower()
    return FIELD_ALIASES.get(lowered, lowered)


def _kind(name: str) -> str | None:
    if PROPERTY_FIELD.match(name):
        return "property"
    return FIELD_KINDS.get(_canonical_field(name))


def _check(node: Any, catalog: Catalog, errors: list[str]) -> None:
    if isinstance(node, BoolOp):
        for child in node.children:
            _check(child, catalog, errors)
        return
    if isinstance(node, Not):
        _check(node.child, catalog, errors)
        return
    kind = _kind(node.field)
    if kind is None:
        errors.append(
            f"Field '{node.field}' does not exist or you do not have permission to view it."
        )
        return
    operator = node.operator
    if operator not in OPERATORS_BY_KIND[kind] or (
        operator in ("=", "!=") and node.value is None and kind != "property"
    ):
        if operator in ("=", "!=") and node.value is None:
            return
        errors.append(f"The operator '{operator}' is not supported by the '{node.field}' field.")
        return
    is_list = isinstance(node.value, list)
    if operator in ("in", "not in") and not is_list and not isinstance(node.value, Function):
        shown = "EMPTY" if node.value is None else node.value
        errors.append(
            f"Operator '{operator}' does not support the non-list value '{shown}' for field "
            f"'{node.field}'."
        )
        return
    if operator not in ("in", "not in") and is_list:
        shown = "(" + ", ".join(str(v) for v in node.value) + ")"
        errors.append(
            f"Operator '{operator}' does not support the list value '{shown}' for field "
            f"'{node.field}'."
        )
        return
    values = node.value if is_list else [node.value]
    name = _canonical_field(node.field)
    for value in values:
        if isinstance(value, Function):
            _check_function(value, kind, node.field, errors)
        elif kind == "named" and value is not None:
            known = catalog.named_values.get(name, set())
            if str(value).lower() not in known:
                errors.append(f"The value '{value}' does not exist for the field '{node.field}'.")
        elif kind == "date" and value is not None:
            try:
                _parse_date(str(value), catalog.now, catalog.time_zone)
            except ValueError:
                errors.append(
                    f"Date value '{value}' for field '{node.field}' is invalid. Valid formats "
                    "include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
                    "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
                )
        elif kind == "user" and value is not None and not catalog.user_exists(str(value)):
            errors.append(f"The value '{value}' does not exist for the field '{node.field}'.")


def _check_function(function: Function, kind: str, field_name: str, errors: list[str]) -> None:
    supported = {
        "user": {"currentuser"},
        "date": {"now", "startofday", "endofday", "startofweek", "endofweek"},
    }
    if function.name not in supported.get(kind, set()):
        errors.append(
            f"Unable to find JQL function '{function.name}()'."
            if not any(function.name in names for names in supported.values())
            else f"Function '{function.name}' is not supported for field '{field_name}'."
        )


_RELATIVE = re.compile(r"^([+-]?)((?:\d+[wdhm]\s*)+)$")
_RELATIVE_PART = re.compile(r"(\d+)([wdhm])")
_ABSOLUTE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


def _parse_date(value: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        sign = -1 if relative.group(1) == "-" else 1
        units = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
        delta = timedelta()
        for amount, unit in _RELATIVE_PART.findall(relative.group(2)):
            delta += timedelta(**{units[unit]: int(amount)})
        return now + sign * delta
    for fmt in _ABSOLUTE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=zone)
        except ValueError:
            continue
    raise ValueError(value)


def _function_date(function: Function, now: datetime) -> datetime:
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = timedelta()
    if function.args:
        offset = _parse_date(function.args[0], now) - now
    if function.name == "startofday":
        return start_of_day + offset
    if function.name == "endofday":
        return start_of_day + timedelta(days=1) - timedelta(milliseconds=1) + offset
    if function.name == "startofweek":
        return start_of_day - timedelta(days=(start_of_day.weekday() + 1) % 7) + offset
    if function.name == "endofweek":
        start = start_of_day - timedelta(days=(start_of_day.weekday() + 1) % 7)
        return start + timedelta(days=7) - timedelta(milliseconds=1) + offset
    return now + offset


def _evaluate(node: Any, doc: dict, catalog: Catalog) -> bool:
    if isinstance(node, BoolOp):
        results = (_evaluate(child, doc, catalog) for child in node.children)
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Not):
        return not _evaluate(node.child, doc, catalog)
    return _evaluate_clause(node, doc, catalog)


def _evaluate_clause(clause: Clause, doc: dict, catalog: Catalog) -> bool:
    kind = _kind(clause.field)
    name = _canonical_field(clause.field)
    if kind == "property":
        actual = _property_values(doc, clause.field)
    elif kind == "text":
        actual = _text_values(doc, name)
    else:
        actual = doc.get(name)
        actual = [] if actual is None else actual if isinstance(actual, list) else [actual]
    operator = clause.operator
    if operator in ("is", "is not") or (operator in ("=", "!=") and clause.value is None):
        empty = not actual
        return empty if operator in ("is", "=") else not empty
    if operator in ("~", "!~"):
        found = any(_text_matches(str(clause.value), str(text)) for text in actual)
        return found if operator == "~" else bool(actual) and not found
    wanted = clause.value if isinstance(clause.value, list) else [clause.value]
    if name == "resolution" and not actual and operator in ("=", "in"):
        # "Unresolved" is JQL's name for an empty resolution.
        return any(str(w).lower() == "unresolved" for w in wanted)
    if operator in ("=", "in"):
        return any(_equals(kind, a, w, catalog) for a in actual for w in wanted)
    if operator in ("!=", "not in"):
        # Like Jira, != and NOT IN never match issues where the field is empty.
        return bool(actual) and not any(
            _equals(kind, a, w, catalog) for a in actual for w in wanted
        )
    return any(_compare(kind, a, clause.value, operator, catalog) for a in actual)


def _equals(kind: str | None, actual: Any, wanted: Any, catalog: Catalog) -> bool:
    if isinstance(wanted, Function):
        if wanted.name == "currentuser":
            return bool(set(actual) & catalog.current_user) if isinstance(actual, set) else False
        wanted_time = _function_date(wanted, catalog.now)
        return isinstance(actual, datetime) and actual == wanted_time
    if kind == "date":
        start = _parse_date(str(wanted), catalog.now, catalog.time_zone)
        return isinstance(actual, datetime) and actual == start
    if isinstance(actual, set):
        return str(wanted).lower() in {str(a).lower() for a in actual}
    if isinstance(actual, bool | int | float) and not isinstance(wanted, bool):
        try:
            return float(actual) == float(wanted)
        except (TypeError, ValueError):
            return False
    return str(actual).lower() == str(wanted).lower()


def _compare(kind: str | None, actual: Any, wanted: Any, operator: str, catalog: Catalog) -> bool:
    if kind == "date":
        if not isinstance(actual, datetime):
            return False
        if isinstance(wanted, Function):
            limit = _function_date(wanted, catalog.now)
        else:
            limit = _parse_date(str(wanted), catalog.now, catalog.time_zone)
        left, right = actual, limit
    elif kind == "key":
        left_key, right_key = _key_parts(actual), _key_parts(wanted)
        if left_key is None or right_key is None or left_key[0] != right_key[0]:
            return False
        left, right = left_key[1], right_key[1]
    else:
        try:
            left, right = float(actual), float(wanted)
        except (TypeError, ValueError):
            left, right = str(actual), str(wanted)
            if isinstance(actual, int | float):
                return False
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[operator]


def _key_parts(value: Any) -> tuple[str, int] | None:
    if isinstance(value, set):
        value = next((v for v in value if "-" in str(v)), None)
    match = re.match(r"^([A-Za-z][A-Za-z0-9_]*)-(\d+)$", str(value or ""))
    return (match.group(1).upper(), int(match.group(2))) if match else None


def _text_values(doc: dict, name: str) -> list[str]:
    if name == "text":
        return [doc.get("summary") or "", doc.get("description") or "", *doc.get("comment", [])]
    value = doc.get(name)
    if isinstance(value, list):
        return [v for v in value if v]
    return [value] if value else []


def _property_values(doc: dict, field_name: str) -> list:
    match = PROPERTY_FIELD.match(field_name)
    assert match is not None
    properties = doc.get("properties", {})
    if match.group("key") not in properties:
        return []
    values = [properties[match.group("key")]]
    for part in (match.group("path") or "").split(".") if match.group("path") else []:
        next_values = []
        for value in values:
            if isinstance(value, dict) and part in value:
                item = value[part]
                next_values.extend(item if isinstance(item, list) else [item])
        values = next_values
    flattened = []
    for value in values:
        flattened.extend(value if isinstance(value, list) else [value])
    return [v for v in flattened if v is not None and not isinstance(v, dict)]


_WORD = re.compile(r"[\w@.\-]+", re.UNICODE)


def _stem(word: str) -> str:
    word = word.lower().strip(".-")
    for suffix in ("ing", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _text_matches(query: str, text: str) -> bool:
    """Jira-style text search: every term must occur as a word; quoted phrases in order."""
    words = [_stem(w) for w in _WORD.findall(text)]
    lowered_text = " ".join(w.lower() for w in _WORD.findall(text))
    phrases = re.findall(r'"([^"]+)"', query)
    rest = re.sub(r'"[^"]+"', " ", query)
    for phrase in phrases:
        phrase_words = " ".join(w.lower() for w in _WORD.findall(phrase))
        if phrase_words and f" {phrase_words} " not in f" {lowered_text} ":
            return False
    for term in _WORD.findall(rest.replace("*", "STAR_")):
        if term.endswith("STAR_"):
            prefix = term[: -len("STAR_")].lower()
            if not any(w.startswith(prefix) for w in lowered_text.split()):
                return False
        elif _stem(term) not in words:
            return False
    return True


def _sort_key(doc: dict, name: str) -> Any:
    value = doc.get(f"sort:{name}", doc.get(name))
    if isinstance(value, set):
        value = sorted(str(v) for v in value)[0] if value else ""
    if isinstance(value, list):
        value = value[0] if value else ""
    if value is None:
        return (1, "")
    if isinstance(value, datetime):
        return (0, value.timestamp())
    return (0, value)
