"""GET answers a worker keeps in memory and sends again while the store's
generations and the model in force are the ones they were rendered at. The
generations move on in the transaction of every change any answer shows,
whichever worker or front end makes it, so a kept answer is never older than
what the next request would read; checking them costs one statement and no
transaction."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from flask import Request

from occi_server.core import Model
from occi_server.store import Generations, Scope

# Headers that filter what a GET answers (text/occi filters), as WSGI names
# them: such a request is answered afresh.
_FILTERS = ("HTTP_CATEGORY", "HTTP_X_OCCI_ATTRIBUTE", "HTTP_X_OCCI_LOCATION")


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...]
    generations: Generations
    model: Model

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(n) + len(v) for n, v in self.headers)


def answer_key(request: Request, base_url: str, scope: Scope | None) -> Hashable | None:
    """What a GET's answer is a function of, given the store's content: its path,
    the media types it accepts, the base URL its locations are written with and
    on whose behalf it reads. None: a request not answered from memory."""
    environ = request.environ
    if request.method not in ("GET", "HEAD") or environ.get("QUERY_STRING") \
            or any(name in environ for name in _FILTERS):
        return None
    return (request.path, environ.get("HTTP_ACCEPT", ""), base_url, scope)


class Answers:
    """The kept answers of one worker, the least recently sent dropped first
    past `capacity` bytes (0: none kept)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, Answer] = OrderedDict()
        self._size = 0

    def find(self, key: Hashable, generations: Generations, model: Model | None
             ) -> Answer | None:
        """The answer kept for `key` if it was rendered at these generations and
        with this model."""
        with self._lock:
            answer = self._kept.get(key)
            if answer is None or answer.generations != generations or answer.model is not model:
                return None
            self._kept.move_to_end(key)
            return answer

    def keep(self, key: Hashable, answer: Answer) -> None:
        if answer.size > self.capacity // 8:  # a few large bodies would push out everything
            return
        with self._lock:
            replaced = self._kept.pop(key, None)
            if replaced is not None:
                self._size -= replaced.size
            self._kept[key] = answer
            self._size += answer.size
            while self._size > self.capacity:
                _, dropped = self._kept.popitem(last=False)
                self._size -= dropped.size
