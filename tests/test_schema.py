"""The schema a blank database ends at, pinned: every table's exact columns and indexes.

``open_db`` on a new file applies every migration in ``core/migrations.py``; the
result is described as text (``describe_schema``: the applied migrations in order,
then per table its columns with type, primary-key position, NOT NULL and default, then
its indexes with their columns) and compared with ``tests/fixtures/schema.txt``.

**After adding a migration**, regenerate the fixture in one command and review the diff
(it should show exactly what the migration adds), then note the migration in
CHANGELOG.md::

    .venv/bin/python -m tests.test_schema --write

sqlite-utils' own bookkeeping table ``_sqlite_migrations`` is listed by name only: its
columns belong to sqlite-utils, not to this project.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import sqlite_utils

from evla_miner.core.db import open_db
from evla_miner.core.migrations import migrations

FIXTURE = Path(__file__).parent / "fixtures" / "schema.txt"
BOOKKEEPING = {"_sqlite_migrations"}
HEADER = (
    "# The schema of a blank database after every migration (tests/test_schema.py).\n"
    "# Regenerate after adding a migration: .venv/bin/python -m tests.test_schema --write\n"
)


def describe_schema(db: sqlite_utils.Database) -> str:
    """The migrations applied and every table's columns and indexes, one line each, sorted
    by table and index name (columns keep their order in the table)."""
    conn = db.conn
    lines = [HEADER.rstrip("\n"), ""]
    lines += [f"migration {m.name}" for m in migrations.applied(db)]
    lines.append("")
    tables = [
        name
        for (name,) in conn.execute(
            "select name from sqlite_master where type = 'table' "
            "and name not like 'sqlite_%' order by name"
        )
    ]
    for table in tables:
        lines.append(f"table {table}")
        if table in BOOKKEEPING:
            lines.append("")
            continue
        for _, column, type_, notnull, default, pk in conn.execute(f"pragma table_info([{table}])"):
            extras = [f"pk {pk}"] if pk else []
            extras += ["not null"] if notnull else []
            extras += [f"default {default}"] if default is not None else []
            lines.append(
                f"  column {column} {type_ or '(none)'}" + "".join(f"; {e}" for e in extras)
            )
        indexes = sorted(conn.execute(f"pragma index_list([{table}])"), key=lambda row: row[1])
        for _, index, unique, origin, _partial in indexes:
            columns = [row[2] for row in conn.execute(f"pragma index_info([{index}])")]
            kind = {"pk": "primary key", "u": "unique constraint"}.get(origin, "index")
            lines.append(
                f"  {kind} {index} ({', '.join(columns)})" + ("; unique" if unique else "")
            )
        lines.append("")
    return "\n".join(lines)


def blank_schema() -> str:
    """``describe_schema`` of a new database file migrated by ``open_db``."""
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "blank.db")
        try:
            return describe_schema(db)
        finally:
            db.close()


def write_fixture() -> Path:
    """Rewrite ``tests/fixtures/schema.txt`` from a blank database."""
    FIXTURE.write_text(blank_schema())
    return FIXTURE


def test_blank_database_matches_the_schema_fixture():
    expected = FIXTURE.read_text()
    actual = blank_schema()
    assert actual == expected, (
        "the migrated schema differs from tests/fixtures/schema.txt; if a migration changed "
        "it on purpose, run `.venv/bin/python -m tests.test_schema --write` and review the diff"
    )


def test_every_migration_is_in_the_fixture():
    """The fixture lists the migrations in the order they are applied: a new migration
    without a regenerated fixture names itself here."""
    listed = [
        line.split()[1]
        for line in FIXTURE.read_text().splitlines()
        if line.startswith("migration ")
    ]
    defined = [m.name for m in migrations.pending(sqlite_utils.Database(memory=True))]
    assert listed == defined


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(
            "usage: python -m tests.test_schema --write   (rewrites tests/fixtures/schema.txt)"
        )
    print(f"wrote {write_fixture()}")
