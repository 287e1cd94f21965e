"""Values kept for their keys a while: each until a moment of its own (or until
pushed out), the most recently asked-for `size` of them; safe across threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

Value = TypeVar("Value")


class Recent(Generic[Value]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        # key -> (value, until); moments compare with whatever `now` callers pass.
        self._kept: OrderedDict[Hashable, tuple[Value, Any]] = OrderedDict()

    def get(self, key: Hashable, now: Any) -> Value | None:
        """The value kept for `key`, if its moment has not come by `now`."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or (kept[1] is not None and kept[1] <= now):
                return None
            self._kept.move_to_end(key)
            return kept[0]

    def put(self, key: Hashable, value: Value, until: Any = None) -> None:
        """Keep `value` for `key` until the moment `until` (None: no end)."""
        with self._lock:
            self._kept[key] = (value, until)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
