"""Run recording: every job a stage does is one row in ``runs``, written one way.

``recorded_run(db, kind, params)`` is the only way a stage records a run. It inserts the
row as ``running`` with this process's pid and host, hands the stage a ``Run`` to
checkpoint its counts and errors as it goes (a killed run still says how far it got),
and closes the row with one status vocabulary:

* ``ok``: the body returned (a stage's warnings, e.g. flagged windows, go in ``message``);
* ``failed``: the body raised an ``Exception`` (a bad file, a service that kept failing);
* ``interrupted``: Ctrl-C, SIGTERM or anything else that is not an ``Exception``.

A process killed with SIGKILL cannot close its row; the next run on the same host finds
rows whose process is gone and closes them as ``interrupted`` (``close_abandoned``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlite_utils

from .db import dumps, now_iso
from .errors import one_line

STATUSES = ("running", "ok", "failed", "interrupted")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_abandoned(row: dict) -> bool:
    """A ``running`` row whose process, on this host, no longer exists."""
    return (
        row.get("status") == "running"
        and bool(row.get("pid"))
        and row.get("host") == socket.gethostname()
        and row["pid"] != os.getpid()
        and not pid_alive(row["pid"])
    )


def close_abandoned(db: sqlite_utils.Database) -> list[int]:
    """Close as ``interrupted`` every run of this host whose process is gone; returns their ids."""
    closed = []
    for row in db.query("select id, status, pid, host from runs where status = 'running'"):
        if is_abandoned(row):
            db.table("runs").update(
                row["id"],
                {
                    "status": "interrupted",
                    "finished": now_iso(),
                    "message": f"process {row['pid']} ended without closing the run",
                },
            )
            closed.append(row["id"])
    return closed


@dataclass
class Run:
    """The open run of a stage: its id, the counts and errors it will be closed with."""

    db: sqlite_utils.Database
    id: int
    counts: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    message: str | None = None
    max_errors: int = 1000  # errors kept in the row; counts keep the true totals

    def error(self, **entry) -> None:
        """Record one problem (a bad line, a failed download), up to ``max_errors`` of them."""
        if len(self.errors) < self.max_errors:
            self.errors.append(entry)

    def checkpoint(self, counts: dict | None = None) -> None:
        """Write the counts so far (``counts`` replaces them when given)."""
        if counts is not None:
            self.counts = counts
        self.db.table("runs").update(
            self.id, {"counts": dumps(self.counts), "errors": dumps(self.errors)}
        )

    def update_params(self, params: dict) -> None:
        self.db.table("runs").update(self.id, {"params": dumps(params)})


def start_run(db: sqlite_utils.Database, kind: str, params: dict | None = None) -> int:
    """Insert a ``running`` row for this process (after closing abandoned ones); returns its id."""
    close_abandoned(db)
    table = db.table("runs")
    table.insert(
        {
            "kind": kind,
            "started": now_iso(),
            "status": "running",
            "params": dumps(params or {}),
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
    )
    assert table.last_pk is not None  # set by the insert
    return int(table.last_pk)


def finish_run(db: sqlite_utils.Database, run: Run, status: str) -> None:
    db.table("runs").update(
        run.id,
        {
            "finished": now_iso(),
            "status": status,
            "counts": dumps(run.counts),
            "errors": dumps(run.errors),
            "message": run.message,
        },
    )


@contextmanager
def recorded_run(
    db: sqlite_utils.Database, kind: str, params: dict | None = None, counts: dict | None = None
) -> Iterator[Run]:
    """Record the body as one run of ``kind`` (see the module docstring for the statuses)."""
    run = Run(db, start_run(db, kind, params), counts=dict(counts or {}))
    try:
        yield run
    except Exception as exc:
        run.message = run.message or one_line(exc)
        finish_run(db, run, "failed")
        raise
    except BaseException as exc:
        run.message = run.message or f"interrupted ({type(exc).__name__})"
        finish_run(db, run, "interrupted")
        raise
    finish_run(db, run, "ok")
