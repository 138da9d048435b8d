"""The one module that owns SQLite: where the database lives, how it is opened,
and the small row helpers every stage shares.

Stages receive a ``sqlite_utils.Database`` from ``open_db`` and never build
paths or connections themselves. Opening applies pending migrations, turns on
WAL (a reviewer can read while the weekly job writes) and sets a busy timeout
so two writers wait for each other instead of failing.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from .migrations import migrations

DEFAULT_DB_PATH = Path("db") / "evla.db"
BUSY_TIMEOUT_MS = 30_000


def resolve_db_path(path: str | os.PathLike | None = None) -> Path:
    """The database path: the explicit one, else ``$EVLA_DB``, else ``db/evla.db``."""
    if path:
        return Path(path)
    if os.environ.get("EVLA_DB"):
        return Path(os.environ["EVLA_DB"])
    return DEFAULT_DB_PATH


def open_db(
    path: str | os.PathLike | None = None, *, memory: bool = False
) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database.

    ``memory=True`` gives a private in-memory database, which is what unit
    tests use: migrations run in milliseconds there.
    """
    if memory:
        db = sqlite_utils.Database(memory=True)
    else:
        db_path = resolve_db_path(path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite_utils.Database(db_path)
        db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    migrations.apply(db)
    return db


def db_dir(db: sqlite_utils.Database) -> Path:
    """The directory beside the database file where stages keep files (PDFs, reports, locks)."""
    for _, name, filename in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and filename:
            return Path(filename).parent
    return Path("db")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def dumps(value) -> str:
    """JSON for storage: compact, unicode kept, stable key order."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def loads(text: str | None, default=None):
    return default if text in (None, "") else json.loads(text)


# --- papers and survey --------------------------------------------------------


def papers_by_id(db: sqlite_utils.Database, ids, columns: str = "*") -> dict[str, dict]:
    """``papers`` rows for many ids, keyed by id (queried in chunks: SQLite caps the
    number of ``?`` in one statement); unknown ids are absent."""
    ids = list(ids)
    rows: dict[str, dict] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in db.query(
            f"select {columns} from papers where id in ({','.join('?' * len(chunk))})", chunk
        ):
            rows[row["id"]] = row
    return rows


def survey_paper_ids(db: sqlite_utils.Database) -> set[str]:
    return {row["paper_id"] for row in db["survey"].rows}
