"""Whole numbers in query strings (page, number, limit, offset)."""

from __future__ import annotations

import re

from occi_server.errors import BadRequest

# ASCII digits only: str.isdigit() also admits '²' and '¹', which int() refuses.
_WHOLE = re.compile(r"[0-9]{1,9}")


def whole_number(name: str, raw: str, *, least: int = 0, most: int | None = None) -> int:
    """`raw` as a whole number from `least` to `most`, or a 400 that says so."""
    value = int(raw) if _WHOLE.fullmatch(raw) else None
    if value is None or value < least or (most is not None and value > most):
        bounds = f"from {least} to {most}" if most is not None else f"of at least {least}"
        raise BadRequest(f"{name} must be a whole number {bounds} (digits 0-9), not {raw!r}")
    return value
