"""The database module: a blank db migrates to the expected schema, in WAL mode, idempotently."""

from evla_miner.core.db import open_db, resolve_db_path
from evla_miner.core.migrations import migrations


def test_blank_db_migrates_to_the_core_schema(db):
    tables = set(db.table_names())
    assert {
        "papers",
        "taxonomy",
        "survey",
        "runs",
        "decisions",
        "embeddings",
        "scores",
        "references",
        "bibtex_keys",
    } <= tables
    assert db["papers"].pks == ["id"]
    assert db["embeddings"].pks == ["model", "content_hash"]
    assert {"version", "versions", "primary_category", "published", "source", "first_seen"} <= set(
        db["papers"].columns_dict
    )
    assert db["embeddings"].columns_dict["vector"] is bytes
    assert any(index.unique and index.columns == ["key"] for index in db["bibtex_keys"].indexes)


def test_every_migration_is_recorded_and_none_is_pending(db):
    assert migrations.pending(db) == []
    assert [m.name for m in migrations.applied(db)][0] == "m001_create_core_tables"


def test_file_db_uses_wal_and_reopening_changes_nothing(tmp_path):
    path = tmp_path / "sub" / "x.db"
    first = open_db(path)
    schema = first.schema
    assert first.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert first.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    first.close()
    again = open_db(path)
    assert again.schema == schema
    again.close()


def test_db_path_precedence(monkeypatch):
    monkeypatch.setenv("EVLA_DB", "/tmp/from-env.db")
    assert str(resolve_db_path("explicit.db")) == "explicit.db"
    assert str(resolve_db_path()) == "/tmp/from-env.db"
    monkeypatch.delenv("EVLA_DB")
    assert str(resolve_db_path()) == "db/evla.db"
