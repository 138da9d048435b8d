"""Shared fixtures. Tests are offline: model hubs are switched off, the db is in
memory unless a test needs a file, and data from ../shared is only read by tests
marked ``shared`` (skipped with a reason where ../shared is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from evla_miner.core.db import open_db  # noqa: E402
from evla_miner.core.settings import seeds_dir  # noqa: E402
from evla_miner.ingest.seeds import init_db  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = Path(os.environ.get("EVLA_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No test reads the user's config or writes the user's db: both point into tmp_path."""
    monkeypatch.delenv("EVLA_CONFIG", raising=False)
    monkeypatch.setenv("EVLA_DB", str(tmp_path / "evla.db"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db():
    """A migrated, empty in-memory database."""
    database = open_db(memory=True)
    yield database
    database.close()


@pytest.fixture
def seeded_db(db):
    """An in-memory database with the bundled taxonomy and survey papers loaded."""
    init_db(db, seeds_dir())
    return db


@pytest.fixture
def shared_dir() -> Path:
    """../shared, or skip: it holds real data that must not be committed (PDFs) or is large."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared data directory {SHARED} (absent here)")
    return SHARED
