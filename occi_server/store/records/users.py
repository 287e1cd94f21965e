"""Users known to the store (HTTP basic passwords, X.509 subjects) and their tenants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy import update as sql_update

from occi_server.store.records.base import Records, _now
from occi_server.store.tables import users


class UserRecords(Records):
    def user(self, name: str) -> dict[str, Any] | None:
        row = self.connection.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else dict(row._mapping)

    def user_by_subject(self, subject_dn: str) -> dict[str, Any] | None:
        row = self.connection.execute(
            select(users).where(users.c.subject_dn == subject_dn)).first()
        return None if row is None else dict(row._mapping)

    def users(self) -> list[dict[str, Any]]:
        return [dict(row._mapping) for row in self.connection.execute(
            select(users).order_by(users.c.name))]

    def save_user(self, name: str, *, tenants: Sequence[str], admin: bool,
                  password_hash: str | None, subject_dn: str | None) -> None:
        values = {"password_hash": password_hash, "subject_dn": subject_dn,
                  "tenants": list(tenants), "admin": admin}
        if self.user(name) is None:
            self.connection.execute(insert(users).values(name=name, created=_now(), **values))
        else:
            self.connection.execute(sql_update(users).where(users.c.name == name)
                                    .values(**values))

    def delete_user(self, name: str) -> bool:
        return bool(self.connection.execute(delete(users).where(users.c.name == name)).rowcount)
