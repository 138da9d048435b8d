"""Runs killed with SIGKILL: a real `evla` subprocess is killed mid-run, and `evla status`
then shows its rows as `interrupted` (closing them), never as `running` forever."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import loads, open_db

REPO = Path(__file__).resolve().parent.parent


def big_snapshot(path: Path, n: int = 150_000) -> Path:
    """``n`` generated records in the arXiv snapshot format: long enough to be killed mid-way."""
    with path.open("w") as handle:
        for i in range(n):
            record = {
                "id": f"{2401 + i // 100_000}.{i % 100_000:05d}",
                "title": f"Generated paper {i}",
                "abstract": "text",
                "authors": "A. Author",
                "categories": "cs.RO",
                "versions": [{"version": "v1", "created": "Tue, 4 Jun 2024 00:00:00 GMT"}],
            }
            handle.write(json.dumps(record) + "\n")
    return path


def start_and_kill(args, db_file: Path, tmp_path: Path, ready) -> int:
    """Start ``evla ARGS``, wait until ``ready(db_file)`` says it is well under way, SIGKILL it;
    returns its pid."""
    env = dict(
        os.environ,
        EVLA_DB=str(db_file),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "evla_miner", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db_file.exists() and ready(db_file):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


def snapshot_lines_read(db_file: Path) -> bool:
    """A snapshot import has committed at least one batch. Read-only and without migrating,
    so watching never takes a write lock from the run being watched."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute("select counts from runs where kind = 'snapshot'").fetchall()
    except sqlite3.OperationalError:  # no runs table yet
        return False
    finally:
        conn.close()
    return bool(rows) and loads(rows[-1][0], {}).get("lines", 0) > 0


def status_json(db_file: Path) -> dict:
    result = CliRunner().invoke(cli, ["--db", str(db_file), "status", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_killed_snapshot_import_is_shown_and_closed_as_interrupted(tmp_path):
    snapshot = big_snapshot(tmp_path / "big.jsonl")
    db_file = tmp_path / "kill.db"
    pid = start_and_kill(
        ["harvest", "--snapshot", str(snapshot)], db_file, tmp_path, snapshot_lines_read
    )
    db = open_db(db_file)
    assert db["runs"].get(1)["status"] == "running"  # what SIGKILL leaves behind
    db.close()
    info = status_json(db_file)
    assert info["closed_abandoned"] == [1]
    (run,) = info["runs"]
    assert run["status"] == "interrupted" and run["finished"]
    assert run["message"] == f"process {pid} ended without closing the run"
    assert 0 < run["counts"]["lines"] < 150_000
    assert status_json(db_file)["closed_abandoned"] == []  # closed once, for good


def test_killed_weekly_run_and_its_harvest_are_closed_and_the_lock_is_free(tmp_path):
    snapshot = big_snapshot(tmp_path / "big.jsonl")
    db_file = tmp_path / "kill.db"
    start_and_kill(
        ["weekly", "--snapshot", str(snapshot), "--offline"], db_file, tmp_path, snapshot_lines_read
    )
    info = status_json(db_file)
    by_kind = {run["kind"]: run for run in info["runs"]}
    assert sorted(info["closed_abandoned"]) == sorted(
        [by_kind["weekly"]["id"], by_kind["snapshot"]["id"]]
    )
    assert by_kind["weekly"]["status"] == by_kind["snapshot"]["status"] == "interrupted"
    # the kernel dropped the weekly lock with the process: the next run may take it
    from evla_miner.pipeline.weekly import lock_path, weekly_lock

    db = open_db(db_file)
    with weekly_lock(lock_path(db)):
        pass
    db.close()
