"""The weekly job: every stage in order over one database.

Each stage is idempotent and records its own run, so the weekly job can be
re-run after a failure and only does what is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlite_utils

from .config import DEMO_SNAPSHOT, seeds_dir
from .db import finish_run, start_run
from .harvest import HarvestResult, import_snapshot
from .progress import Reporter
from .seeds import init_db


@dataclass
class WeeklyResult:
    run_id: int
    harvest: HarvestResult | None = None
    stages: dict = field(default_factory=dict)


def run_weekly(
    db: sqlite_utils.Database,
    snapshot: Path | None = None,
    since: date | None = None,
    until: date | None = None,
    demo: bool = False,
    reporter: Reporter | None = None,
) -> WeeklyResult:
    """Run the pipeline: seeds, harvest, then the later stages as they exist."""
    reporter = reporter or Reporter()
    if demo:
        snapshot = snapshot or DEMO_SNAPSHOT
    run_id = start_run(db, "weekly", {"snapshot": snapshot and str(snapshot), "demo": demo})
    result = WeeklyResult(run_id)
    try:
        result.stages["init"] = init_db(db, seeds_dir())
        if snapshot:
            result.harvest = import_snapshot(db, snapshot, since, until, reporter=reporter)
            result.stages["harvest"] = result.harvest.counts
    except BaseException as exc:
        finish_run(db, run_id, "failed", result.stages, message=str(exc))
        raise
    finish_run(db, run_id, "ok", result.stages)
    return result
