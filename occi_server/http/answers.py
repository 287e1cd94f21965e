"""GET answers a worker keeps in memory and sends again while the store's
generations and the model in force are the ones they were rendered at. The
generations move on in the transaction of every change any answer shows,
whichever worker or front end makes it, so a kept answer is never older than
what the next request would read; checking them costs one statement and no
transaction. A kept answer is sent before Flask sees the request (`AnswerPath`),
past the same gate: version check, authentication, rate limit, tenant scope,
headers, metrics and access log."""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from werkzeug.datastructures import EnvironHeaders
from werkzeug.wsgi import get_path_info

from occi_server.core import Model
from occi_server.errors import OCCIError, Unauthorized
from occi_server.http.gate import AUTHENTICATED, STATUS_LINES, Gate
from occi_server.http.logs import request_id_of
from occi_server.http.urls import known_base_url
from occi_server.service import Service
from occi_server.store import Generations, Scope

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Headers that filter what a GET answers (text/occi filters), or frame a body,
# as WSGI names them: such a request is answered afresh.
_FILTERS = ("HTTP_CATEGORY", "HTTP_X_OCCI_ATTRIBUTE", "HTTP_X_OCCI_LOCATION",
            "HTTP_TRANSFER_ENCODING")


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...]
    generations: Generations
    # Weakly: an answer left behind keeps no model the worker has let go of.
    model: weakref.ref[Model]

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(n) + len(v) for n, v in self.headers)

    def holds(self, generations: Generations, model: Model | None) -> bool:
        """Whether it was rendered at these generations and with this model."""
        return self.generations == generations and model is not None \
            and self.model() is model


def keeps(environ: dict[str, Any]) -> bool:
    """Whether a request's answer may be kept or sent from memory: a GET (or
    HEAD) with no query, no filter and no body (whose framing Flask checks)."""
    return environ.get("REQUEST_METHOD") in ("GET", "HEAD") \
        and not environ.get("QUERY_STRING") and environ.get("CONTENT_LENGTH", "0") in ("", "0") \
        and not any(name in environ for name in _FILTERS)


def answer_key(environ: dict[str, Any], base_url: str, scope: Scope | None) -> Hashable:
    """What a GET's answer is a function of, given the store's content: its path,
    the media types it accepts, the base URL its locations are written with and
    on whose behalf it reads."""
    return (environ.get("PATH_INFO", ""), environ.get("HTTP_ACCEPT", ""), base_url, scope)


class Answers:
    """The kept answers of one worker, the least recently sent dropped first
    past `capacity` bytes (0: none kept)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, Answer] = OrderedDict()
        self._size = 0

    def take(self, environ: dict[str, Any]) -> bool:
        """Whether this request's answer may be kept, or sent from what is kept."""
        return self.capacity > 0 and keeps(environ)

    def find(self, key: Hashable) -> Answer | None:
        """The answer kept for `key`, whether it still holds or not."""
        with self._lock:
            answer = self._kept.get(key)
            if answer is not None:
                self._kept.move_to_end(key)
            return answer

    @property
    def largest(self) -> int:
        """The largest answer kept: a few large bodies would push out everything."""
        return self.capacity // 8

    def keep(self, key: Hashable, answer: Answer) -> None:
        if answer.size > self.largest:
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

    def kept_as_sent(self, key: Hashable, pieces: Iterator[bytes], answer: Answer,
                     now: Callable[[], Generations]) -> Iterator[bytes]:
        """A body sent piece by piece (each piece read in a transaction of its
        own), kept as `answer`'s once whole if it is small enough and nothing
        changed while it was read: the generations `now` are still `answer`'s."""
        parts: list[bytes] | None = []
        size = 0
        for piece in pieces:
            yield piece
            if parts is not None:
                parts.append(piece)
                size += len(piece)
                if size > self.largest:
                    parts = None
        if parts is None:
            return
        try:
            unchanged = now() == answer.generations
        except OCCIError:
            return
        if unchanged:
            self.keep(key, replace(answer, body=b"".join(parts)))


class AnswerPath:
    """The application as WSGI sees it: a GET whose answer is kept is sent from
    here; any other request, or anything the gate refuses (to be answered with
    the error's rendering), goes on to Flask."""

    def __init__(self, app: WSGIApp, gate: Gate, service: Service, answers: Answers) -> None:
        self.app = app
        self.gate = gate
        self.service = service
        self.answers = answers

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if self.answers.take(environ):
            sent = self._kept(environ, start_response)
            if sent is not None:
                return sent
        return self.app(environ, start_response)

    def _kept(self, environ: dict[str, Any], start_response: Callable[..., Any]
              ) -> list[bytes] | None:
        started = time.perf_counter()
        base = known_base_url(environ)
        if base is None:
            return None
        gate, service, remote = self.gate, self.service, environ.get("REMOTE_ADDR")
        try:
            gate.check_version(environ)
            try:
                principal = gate.authenticate(environ, EnvironHeaders(environ), remote, None)
            except Unauthorized as refusal:
                environ[AUTHENTICATED] = refusal
                raise
            # Flask need not authenticate the request again (which may cost a
            # token's verification, or a slow hash); no client can set this key.
            environ[AUTHENTICATED] = principal
            scope = gate.scope(principal, environ)
            answer = self.answers.find(answer_key(environ, base, scope))
            if answer is None:
                return None
            generations = service.store.generations()
            if not answer.holds(generations, service.kept_model(generations.model, scope)):
                return None
            gate.count(principal, remote)
        except OCCIError:  # Flask meets it again and answers it in the right rendering
            return None
        request_id = request_id_of(environ)
        signed: dict[str, str] = {}
        gate.sign(signed, request_id)
        start_response(STATUS_LINES[200], [  # in the order Flask sends them
            ("Content-Type", answer.media_type), ("Content-Length", str(len(answer.body))),
            *answer.headers, *signed.items()])
        gate.account(environ["REQUEST_METHOD"], "/" + get_path_info(environ).lstrip("/"), 200,
                     started, request_id)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [answer.body]
