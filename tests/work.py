"""Counting work instead of timing it: a bound that holds on a loaded machine.

A converter that turns quadratic shows as many more Python calls per input character, however
fast or slow the machine is; a wall-clock limit only shows how busy the machine was.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def count_calls(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """Run ``function`` and return its result and the number of Python function calls it made."""
    calls = 0

    def profile(_frame, event: str, _arg) -> None:  # type: ignore[no-untyped-def]
        nonlocal calls
        if event == "call":
            calls += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        result = function(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    return result, calls


# Every converter here makes at most about 25 Python calls per input character (or nesting
# level); a quadratic pass over 10,000 levels would make about 10,000. 50 leaves room for
# changes without letting a quadratic slip through.
CALLS_PER_UNIT = 50


def linear_budget(size: int) -> int:
    """The most calls a linear pass over ``size`` characters (or levels) may make."""
    return CALLS_PER_UNIT * size
