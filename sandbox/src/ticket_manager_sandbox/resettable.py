"""reset() for the emulators: forget everything, as if just built, while the servers run on.

Tests share one running set of emulators per session and reset them before each test, which
keeps every test's view fresh without starting three HTTPS servers each time. An emulator is
built again from the arguments it was first given; its servers keep serving whatever ``app``
it holds then (see :meth:`Sandbox.serve_app`).
"""

from __future__ import annotations

from typing import Any


class Resettable:
    """Remembers the constructor's arguments so that :meth:`reset` can build the state again."""

    _construction: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        instance = super().__new__(cls)
        instance._construction = (args, kwargs)
        return instance

    def reset(self) -> None:
        """Forget every change since construction: data, faults, recorded requests, settings."""
        construction = self._construction
        self.__dict__.clear()
        self._construction = construction
        args, kwargs = construction
        self.__init__(*args, **kwargs)  # type: ignore[misc]
