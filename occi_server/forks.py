"""What a forked child must not take over from its parent: locks its parent's
threads may hold, threads it does not have, descriptors whose locks it would
share with the parent and every sibling."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable


def forget_in_children(forget: Callable[[], None]) -> None:
    """Call the bound method `forget` first thing in every child this process
    forks (the child alone then, no thread racing it). Held weakly: it keeps
    no object alive."""
    method = weakref.WeakMethod(forget)

    def in_child() -> None:
        found = method()
        if found is not None:
            found()

    os.register_at_fork(after_in_child=in_child)
