"""Numbered SQL migrations per dialect, recorded by name in ``schema_version``.

``sqlite/NNNN_name.sql`` and ``postgres/NNNN_name.sql`` are applied in order, all pending
ones in one transaction together with their ``schema_version`` rows, so a crash leaves
either all of them or none. A migration whose name ends in ``_timescaledb`` is applied only when
the server offers the TimescaleDB extension; it is applied later if the extension appears.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from importlib import resources
from typing import Literal

__all__ = ["Dialect", "Migration", "load_migrations", "split_statements"]

Dialect = Literal["sqlite", "postgres"]

#: The table every dialect keeps: one row per applied migration.
SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    name: str  # file stem, e.g. "0001_initial"
    sql: str

    @property
    def needs_timescaledb(self) -> bool:
        return self.name.endswith("_timescaledb")


def load_migrations(dialect: Dialect) -> list[Migration]:
    """The dialect's migrations in order of their number."""
    folder = resources.files(__package__).joinpath(dialect)
    found = [
        Migration(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda m: m.name)


def split_statements(script: str) -> list[str]:
    """Complete SQL statements of ``script`` (SQLite's own notion of "complete")."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            body = "\n".join(
                part for part in pending.splitlines() if not part.strip().startswith("--")
            ).strip()
            if body.strip(";").strip():
                statements.append(body)
            pending = ""
    if pending.strip() and any(
        not part.strip().startswith("--") and part.strip() for part in pending.splitlines()
    ):
        raise ValueError("migration ends inside an unterminated statement")
    return statements
