"""Jobs: the infrastructure's part of a create (provisioning a guest, volume or
bridge, attaching links) runs after the request's transaction has committed,
so that no database lock is held while a guest boots or a volume is copied.

The entity is stored first in state `waiting` (as rOCCI does); a job thread
does the work and stores the outcome. The request waits for the job up to
`job_wait_seconds`: a job that is done by then answers as a synchronous one
would (a refusal such as 507 or 503 removes the entity again and is the
answer); a longer one is handed off and the client sees `waiting` until it
ends. Jobs are recorded in the store with the process at work on them; the
jobs of a process that stopped (its lease expired, or on this host its pid is
gone) are taken over by another: an interrupted create is finished where the
infrastructure has what it needs (its guest defined, not yet started), other
jobs end failed with their entities' real state read back."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from occi_server.core import Entity
from occi_server.errors import BackendUnavailable, OCCIError
from occi_server.metrics import JOBS
from occi_server.service.presence import Presence, holder_id, is_gone
from occi_server.service.workers import JobThreads
from occi_server.store import Repository, Store

log = logging.getLogger("occi_server.jobs")
Attributes = dict[str, Any]


@dataclass
class Step:
    entity: Entity  # whose stored attributes the outcome updates
    description: str
    run: Callable[[], Attributes]  # the infrastructure's work: attributes to store
    undo: Callable[[], None]  # when the entity went away meanwhile
    restore: Attributes | None = None  # an action's entity on a refusal; None: a create
    finish: Callable[[Repository], None] | None = None  # stores more, with the outcome
    # The answer to a request still waiting when the step leaves its entity in
    # `error` (an action or delete the infrastructure failed); None: the entity says it.
    failure: Callable[[str], OCCIError] | None = None
    # Another job still at work on the entity is waited for first (a delete of
    # a resource in the middle of an action).
    after_others: bool = False
    restore_mixins: list[str] | None = None  # a change's entity on a refusal


@dataclass
class Job:
    entity: Entity
    operation: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    steps: list[Step] = field(default_factory=list)


@dataclass
class _Outcome:
    lock: threading.Lock = field(default_factory=threading.Lock)
    handed_off: bool = False
    refusal: OCCIError | None = None


def state_attribute(entity: Entity) -> str:
    return state_attribute_of(entity.kind)


def state_attribute_of(kind_id: str) -> str:
    """Where a kind keeps its state (occi.compute.state, occi.storagelink.state, …)."""
    return f"occi.{kind_id.rpartition('#')[2]}.state"


def reported(entity: Entity, real: Attributes | None) -> Attributes:
    """What of the infrastructure's report on an entity it shows: all of it,
    but an entity still in `error` keeps the reason it first failed for, and
    one still in the state an action left it in keeps what the action noted
    after the state's message (a stop that had to power the guest off)."""
    state = state_attribute(entity)
    if not real or real.get(state) == entity.attributes.get(state) == "error":
        return {}
    message = f"{state}.message"
    stored, now = entity.attributes.get(message), real.get(message)
    if real.get(state) == entity.attributes.get(state) and isinstance(stored, str) \
            and isinstance(now, str) and stored.startswith(f"{now} ("):
        return {**real, message: stored}
    return real


def busy_with(repo: Repository, entity_id: str, operation: str) -> bool:
    """Whether a job is at `operation` ("creating", "deleting"…) on the entity now."""
    return any(job["operation"] == operation for job in repo.running_jobs(entity_id))


def error_state(state: str, message: str) -> Attributes:
    """`error` in the state attribute `state`, with why."""
    return {state: "error", f"{state}.message": message}


JOB_THREADS = JobThreads()


def run_job(store: Store, job: Job, wait: float, presence: Presence) -> None:
    """Run `job` in a thread (this process's lease renewed meanwhile); wait
    for it up to `wait` seconds. Raises the refusal that ended it if it ended
    by then."""
    outcome = _Outcome()
    ended = threading.Event()

    def work() -> None:
        try:
            with presence.working():
                _work(store, job, outcome)
        finally:
            ended.set()

    JOB_THREADS.run(work)
    ended.wait(wait)
    with outcome.lock:
        if outcome.refusal is None and not ended.is_set():
            outcome.handed_off = True
            return
    if outcome.refusal is not None:
        raise outcome.refusal


def _work(store: Store, job: Job, outcome: _Outcome) -> None:
    """Every job ends: whatever goes wrong, it is recorded as failed and what it
    worked on says `error`."""
    try:
        _steps(store, job, outcome)
    except Exception as exc:
        log.exception("job %s ended by a defect", job.id)
        _fail(store, job, f"internal error: {exc}")


def _fail(store: Store, job: Job, message: str) -> None:
    try:
        with store.transaction(write=True) as repo:
            for step in job.steps:
                stored = repo.get(step.entity.id)
                if stored is not None and stored.attributes.get(
                        state_attribute(stored)) == "waiting":
                    stored.attributes.update(error_state(state_attribute(stored), message))
                    repo.update(stored, mixins=False)
            repo.update_job(job.id, state="failed", progress="ended by an error", error=message)
        JOBS.labels(job.operation, "failed").inc()
    except Exception:  # the store itself fails: a restart's recovery ends the job
        log.exception("job %s could not be recorded as failed", job.id)


def _put_back(repo: Repository, step: Step, why: str | None = None) -> None:
    """Undo what storing the step's entity `waiting` did: a new entity goes, a
    changed one gets back what it had."""
    stored = repo.get(step.entity.id)
    if stored is None:
        return
    if step.restore is None:
        repo.delete(stored.id)
        return
    stored.attributes = {name: value for name, value in {**stored.attributes,
                                                          **step.restore}.items()
                         if value is not None}
    if step.restore_mixins is not None:
        stored.mixins = list(step.restore_mixins)
    if why is not None:
        stored.attributes[f"{state_attribute(stored)}.message"] = why
    repo.update(stored)


def _wait_for_others(store: Store, job: Job, entity_id: str, limit: float = 3600) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with store.transaction(write=False) as repo:
            if not [other for other in repo.running_jobs(entity_id) if other["id"] != job.id]:
                return
        time.sleep(0.2)
    raise BackendUnavailable(f"another job on {entity_id} did not end within {limit:g} s")


def _steps(store: Store, job: Job, outcome: _Outcome) -> None:
    """Each step's outcome is stored in one transaction (the job's end with the
    last one's): a one-step job, a create's, writes once."""
    failed: list[str] = []
    ended = False
    for number, step in enumerate(job.steps):
        if number:  # the job was stored at work on its first step
            with store.transaction(write=True) as repo:
                repo.update_job(job.id, progress=step.description)
        try:
            if step.after_others:
                _wait_for_others(store, job, step.entity.id)
            attributes = step.run()
        except OCCIError as exc:  # the infrastructure refused: 507, 503, 409…
            with outcome.lock:
                answered = number == 0 and not outcome.handed_off
                if answered:
                    outcome.refusal = exc
            if answered:  # the request answers with the refusal; nothing it made stays
                with store.transaction(write=True) as repo:
                    for planned in job.steps:  # none of the steps after it runs either
                        _put_back(repo, planned)
                    repo.update_job(job.id, state="failed", progress="refused",
                                    error=exc.message)
                JOBS.labels(job.operation, "refused").inc()
                return
            if step.restore is not None:  # nothing changed: the entity is as it was, and says why
                with store.transaction(write=True) as repo:
                    _put_back(repo, step, why=f"refused: {exc.message}")
                failed.append(f"{step.description}: {exc.message}")
                continue
            attributes = error_state(state_attribute(step.entity), exc.message)
        except Exception as exc:  # a defect: shown on the entity, logged in full
            log.exception("job %s: %s failed", job.id, step.description)
            attributes = error_state(state_attribute(step.entity), f"internal error: {exc}")
        if attributes.get(state_attribute(step.entity)) == "error":
            why = attributes.get(state_attribute(step.entity) + ".message", "")
            failed.append(f"{step.description}: {why}")
            if step.failure is not None:
                with outcome.lock:
                    if not outcome.handed_off and outcome.refusal is None:
                        outcome.refusal = step.failure(why)
        with store.transaction(write=True) as repo:
            stored = _stored_with(repo, step.entity, attributes)
            if stored is not None and step.finish is not None and \
                    attributes.get(state_attribute(step.entity)) != "error":
                step.finish(repo)
            if number == len(job.steps) - 1:
                _end(repo, job, failed)
                ended = True
        if stored is None:  # deleted meanwhile: what the step made goes too (no lock held)
            try:
                step.undo()
            except Exception:
                log.exception("job %s: undoing %s failed", job.id, step.description)
            continue
        step.entity.attributes.update(attributes)
    if not ended:  # the last step was refused and put back in a transaction of its own
        with store.transaction(write=True) as repo:
            _end(repo, job, failed)
    JOBS.labels(job.operation, "failed" if failed else "done").inc()


def _stored_with(repo: Repository, entity: Entity, attributes: Attributes) -> Entity | None:
    """The entity as stored with a step's outcome, or None if it went meanwhile.
    While nothing changed it since the request or step before wrote it (its
    `updated`), one statement stores the outcome over what was written; else
    it is read again."""
    if attributes and entity.updated is not None:
        outcome = replace(entity, attributes={**entity.attributes, **attributes})
        if repo.update_unless_changed(outcome, was=entity):
            entity.updated = outcome.updated
            return outcome
    stored = repo.get(entity.id)
    if stored is not None and attributes:  # a delete's teardown reports none: it goes next
        stored.attributes.update(attributes)
        repo.update(stored, mixins=False)
    return stored


def _end(repo: Repository, job: Job, failed: list[str]) -> None:
    repo.update_job(job.id, state="failed" if failed else "done", progress="finished",
                    error="; ".join(failed) or None)


INTERRUPTED = "the front end doing it stopped"


@dataclass
class _Claimed:
    job: dict[str, Any]
    entities: list[Entity]  # those still `waiting` on it


def take_over(store: Store, finish: Callable[[Entity, str], Attributes | None], grace: float,
              presence: Presence) -> list[str]:
    """The jobs whose process stopped (see presence.is_gone; `grace`: how long
    a new job's process may take to show it lives) become this process's; then,
    with no transaction open, `finish(entity, operation)` brings each entity
    they left `waiting` as far as the infrastructure lets it (an interrupted
    create's guest is started) and says its state, or None for `error`. A
    create so finished is done; any other job ends failed, its entities in
    their real state. Returns the jobs' entities' locations."""
    claimed = _claim(store, grace)
    if not claimed:
        return []
    with presence.working():  # another process must not take them back meanwhile
        for taken in claimed:
            _finish(store, taken, finish)
    return [taken.job["location"] for taken in claimed]


def _claim(store: Store, grace: float) -> list[_Claimed]:
    claimed = []
    now = datetime.now(UTC)
    with store.transaction(write=True) as repo:
        leases = repo.leases("process:")
        for job in repo.claim_running_jobs():
            updated = job["updated"] if job["updated"].tzinfo else \
                job["updated"].replace(tzinfo=UTC)
            if not is_gone(job["holder"], leases, now, (now - updated).total_seconds(), grace):
                continue
            repo.update_job(job["id"], holder=holder_id(), progress=f"taken over: {INTERRUPTED}")
            waiting = [e for e in [repo.get(job["entity_id"]),
                                   *repo.links_from([job["entity_id"]]).get(job["entity_id"], [])]
                       if e is not None and e.attributes.get(state_attribute(e)) == "waiting"]
            claimed.append(_Claimed(job, waiting))
    return claimed


def _finish(store: Store, taken: _Claimed,
            finish: Callable[[Entity, str], Attributes | None]) -> None:
    outcome: dict[str, Attributes] = {}
    for entity in taken.entities:
        try:
            real = finish(entity, taken.job["operation"])
        except Exception:
            log.exception("job %s: %s could not be finished", taken.job["id"], entity.location)
            real = None
        outcome[entity.id] = real or error_state(
            state_attribute(entity), f"its job was interrupted ({INTERRUPTED}); delete it and "
                                     "create it again")
    done = taken.job["operation"] == "creating" and not any(
        outcome[entity.id].get(state_attribute(entity)) == "error" for entity in taken.entities)
    with store.transaction(write=True) as repo:
        for entity in taken.entities:
            stored = repo.get(entity.id)
            if stored is not None and stored.attributes.get(state_attribute(stored)) == "waiting":
                stored.attributes.update(outcome[entity.id])
                repo.update(stored, mixins=False)
        if done:
            repo.update_job(taken.job["id"], state="done",
                            progress=f"finished by another process ({INTERRUPTED})")
        else:
            repo.update_job(taken.job["id"], state="failed", progress="interrupted",
                            error=INTERRUPTED)
    JOBS.labels(taken.job["operation"], "done" if done else "failed").inc()


def state_of(entity: Entity) -> dict[str, Any]:
    """The entity's state and its message, to go back to if an action is refused."""
    state = state_attribute(entity)
    return {name: entity.attributes.get(name) for name in (state, f"{state}.message")}
