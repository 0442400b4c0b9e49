"""Refuse input no field can hold, before any view, database query or Jira call sees it.

A NUL byte is refused by PostgreSQL's text columns and by Jira; an unpaired surrogate (a JSON
``"\\ud800"`` escape) cannot be encoded as UTF-8 at all; JSON nested a thousand levels deep
overflows the parser's recursion. Each used to surface as a 500, sometimes after a Jira issue
had been created. Checked once for every request of the product's app, they are a 4xx problem
naming the field, and nothing downstream needs to care.
"""

from __future__ import annotations

import json

from flask import request

from ticket_manager.api.problems import Problem

# Deeper than any body the service accepts; shallow enough for every parser and walker.
MAX_JSON_DEPTH = 32
# Below the 8190 bytes of request line the shipped gunicorn settings accept, so that a long
# URL gets problem details from the app rather than the server's own page.
MAX_URL_LENGTH = 4096
FORBIDDEN = "Contains a NUL byte or an unpaired surrogate (\\ud800-\\udfff)."


def has_forbidden_character(text: str) -> bool:
    """True for a NUL byte or an unpaired UTF-16 surrogate: text no field can store or send."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def refuse_malformed_input() -> None:
    """``before_request``: 400/422 problem details for unusable paths, queries and bodies."""
    if len(request.full_path) > MAX_URL_LENGTH:
        raise Problem(414, "uri-too-long", f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if has_forbidden_character(request.path):
        raise Problem(400, "bad-request", f"The path is not valid: {FORBIDDEN}")
    for name, value in request.args.items(multi=True):
        if has_forbidden_character(name) or has_forbidden_character(value):
            raise _invalid("query", name, FORBIDDEN)
    if request.mimetype == "multipart/form-data" or (
        request.mimetype == "application/x-www-form-urlencoded"
    ):
        for name, value in request.form.items(multi=True):
            if has_forbidden_character(name) or has_forbidden_character(value):
                raise _invalid("form", name, FORBIDDEN)
    elif request.is_json and request.content_length != 0:
        _check_json_body()


def _check_json_body() -> None:
    raw = request.get_data(cache=True)
    if not raw:
        return
    try:
        body = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        return  # the view's own parser answers 400 for JSON that does not parse
    stack: list[tuple[object, str, int]] = [(body, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        if isinstance(value, str):
            if has_forbidden_character(value):
                raise _invalid("json", path or "_", FORBIDDEN)
        elif isinstance(value, dict):
            for key, item in value.items():
                if has_forbidden_character(key):
                    raise _invalid("json", key, FORBIDDEN)
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, path, depth + 1) for item in value)


def _invalid(part: str, field: str, message: str) -> Problem:
    name = field if not has_forbidden_character(field) else repr(field)[1:-1]
    return Problem(
        422,
        "validation-error",
        "The request is not valid: see errors.",
        errors={part: {name: [message]}},
    )


def _too_deep() -> Problem:
    return Problem(
        400, "bad-request", f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."
    )
