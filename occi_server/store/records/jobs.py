"""Jobs: the infrastructure's work done after a request's transaction, as its scope sees them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy import update as sql_update

from occi_server.core import Entity
from occi_server.store.records.base import Records, _now
from occi_server.store.records.driven import Driven
from occi_server.store.tables import RUNNING, RUNNING_JOBS, jobs

_INSERT = Driven(insert(jobs))
_UPDATE = Driven(sql_update(jobs).where(jobs.c.id == bindparam("job_id")))


class JobRecords(Records):
    def insert_job(self, job_id: str, entity: Entity, operation: str, progress: str,
                   holder: str | None = None) -> None:
        """A job, at work from the start on `progress` (its first step), in the
        process `holder`."""
        now = _now()
        _INSERT.run_later(self.connection, dict(
            id=job_id, entity_id=entity.id, location=entity.location, operation=operation,
            state=RUNNING, progress=progress, error=None, created=now, updated=now,
            tenant=entity.tenant or self._stamp()[0], holder=holder))

    def update_job(self, job_id: str, **values: str | None) -> None:
        _UPDATE.run_later(self.connection, {**values, "job_id": job_id, "updated": _now()})

    def jobs(self, *, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = self._own_jobs(select(jobs).order_by(jobs.c.created.desc()).limit(limit))
        if state is not None:
            query = query.where(jobs.c.state == state)
        return [dict(row._mapping) for row in self.connection.execute(query)]

    def claim_running_jobs(self) -> list[dict[str, Any]]:
        """Every running job, locked for this transaction (on PostgreSQL another
        transaction claiming them at once skips those already claimed)."""
        query = select(jobs).where(RUNNING_JOBS).with_for_update(skip_locked=True)
        return [dict(row._mapping) for row in self.connection.execute(query)]

    def running_jobs(self, entity_id: str) -> list[dict[str, Any]]:
        """The jobs still at work on an entity (whoever's)."""
        return [dict(row._mapping) for row in self.connection.execute(select(jobs).where(
            (jobs.c.entity_id == entity_id) & RUNNING_JOBS))]

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self.connection.execute(
            self._own_jobs(select(jobs).where(jobs.c.id == job_id))).first()
        return None if row is None else dict(row._mapping)

    def _own_jobs(self, query: Any) -> Any:
        if self.sees_everything:
            return query
        assert self.scope is not None
        return query.where(jobs.c.tenant == self.scope.tenant)
