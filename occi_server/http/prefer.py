"""The Prefer request header (RFC 7240) as far as jobs are concerned: `wait=N`
asks the server to hold the answer up to N seconds for the infrastructure's
part of the request, so a script can run one command after another without
polling for `waiting` to end; `respond-async` asks for the answer at once.
Preferences not understood are ignored, as the RFC says."""

from __future__ import annotations

import re

_WAIT = re.compile(r"wait\s*=\s*\"?(\d{1,9})\"?\Z", re.IGNORECASE)


def preferred_wait(header: str | None, longest: float) -> tuple[float, str] | None:
    """Seconds to wait for the request's job (at most `longest`) and the
    Preference-Applied value that says so; None: no preference."""
    wait, asynchronous = None, False
    for preference in (header or "").split(","):
        token = preference.split(";")[0].strip()
        found = _WAIT.match(token)
        if found:
            wait = min(float(found.group(1)), longest)
        elif token.lower() == "respond-async":
            asynchronous = True
    if wait is not None:
        return wait, f"wait={wait:g}"
    return (0.0, "respond-async") if asynchronous else None
