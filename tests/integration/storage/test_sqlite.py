"""SQLite-only behaviour: pragmas, URLs, a second process writing at the same time."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ivy_gateway.adapters.storage import open_store
from ivy_gateway.adapters.storage.sqlite import sqlite_path
from ivy_gateway.domain.store import StoreError, StoreMode


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///ivy-gateway.db", Path("ivy-gateway.db")),
        ("sqlite:///data/ivy.db", Path("data/ivy.db")),
        ("sqlite:////var/lib/ivy/ivy.db", Path("/var/lib/ivy/ivy.db")),
    ],
)
def test_sqlite_path_reads_relative_and_absolute_urls(url: str, path: Path) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite:x.db"])
def test_sqlite_path_rejects_urls_without_a_file(url: str) -> None:
    with pytest.raises(StoreError):
        sqlite_path(url)


async def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(StoreError, match=r"storage\.url"):
        await open_store("mysql://db/ivy")


async def test_store_uses_wal_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "ivy.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        assert store.mode is StoreMode.SQLITE
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        conn.close()
    finally:
        await store.close()
