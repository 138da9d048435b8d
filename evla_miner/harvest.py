"""Harvest stage: bring arXiv records into the ``papers`` table.

``import_snapshot`` reads the arXiv bulk metadata format (JSON lines, plain or
gzip), streaming it so a multi-GB dump needs constant memory, and upserts by
versionless id (see ``records`` for the rules). Bad lines are reported with
their line number and skipped; the run goes on.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlite_utils

from .db import finish_run, start_run, update_run_counts
from .errors import BadInput
from .progress import Reporter
from .records import RecordError, paper_from_snapshot, upsert_papers

BATCH_SIZE = 1000
MAX_STORED_ERRORS = 1000


@dataclass
class HarvestResult:
    run_id: int
    counts: dict
    errors: list[dict] = field(default_factory=list)


def _open_lines(path: Path):
    """Binary line iterator plus the byte size, for progress by bytes read."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb"), None
    return open(path, "rb"), os.path.getsize(path)


def in_window(published: str | None, since: date | None, until: date | None) -> bool:
    """Whether a paper's first-version date is inside [since, until] (both inclusive)."""
    if since is None and until is None:
        return True
    if not published:
        return False
    day = date.fromisoformat(published[:10])
    return (since is None or day >= since) and (until is None or day <= until)


def import_snapshot(
    db: sqlite_utils.Database,
    path: str | os.PathLike,
    since: date | None = None,
    until: date | None = None,
    reporter: Reporter | None = None,
    source: str | None = None,
) -> HarvestResult:
    """Import an arXiv metadata snapshot file; returns the run id, counts and bad lines.

    Counts: ``lines``, ``inserted``, ``updated``, ``unchanged``, ``outside_window``, ``bad``.
    Each batch is committed on its own, so an interrupted import keeps what it
    read and a re-run finishes the job without duplicates.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"snapshot file not found: {path}")
    if since and until and since > until:
        raise BadInput(f"--since {since} is after --until {until}")
    reporter = reporter or Reporter()
    source = source or f"snapshot:{path.name}"
    run_id = start_run(
        db,
        "snapshot",
        {"file": str(path), "since": since and since.isoformat(), "until": until and until.isoformat()},
    )
    counts = {"lines": 0, "inserted": 0, "updated": 0, "unchanged": 0, "outside_window": 0, "bad": 0}
    errors: list[dict] = []
    batch: list[dict] = []

    def flush():
        for key, value in upsert_papers(db, batch).items():
            counts[key] += value
        batch.clear()
        update_run_counts(db, run_id, counts)

    handle, total = _open_lines(path)
    reporter.start(f"Importing {path.name}", total=total, unit="bytes" if total else "items")
    try:
        with handle:
            for line_number, line in enumerate(handle, start=1):
                if total is not None:
                    reporter.advance(len(line))
                if not line.strip():
                    continue
                counts["lines"] += 1
                try:
                    paper = paper_from_snapshot(json.loads(line), source=source)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    reason = f"invalid JSON: {getattr(exc, 'msg', exc)}"
                    paper = None
                except RecordError as exc:
                    reason, paper = str(exc), None
                if paper is None:
                    counts["bad"] += 1
                    if len(errors) < MAX_STORED_ERRORS:
                        errors.append({"line": line_number, "reason": reason})
                    continue
                if not in_window(paper["published"], since, until):
                    counts["outside_window"] += 1
                    continue
                batch.append(paper)
                if total is None:
                    reporter.advance(1)
                if len(batch) >= BATCH_SIZE:
                    flush()
            flush()
    except (OSError, EOFError) as exc:
        finish_run(db, run_id, "failed", counts, errors, message=f"read error: {exc}")
        raise BadInput(f"{path}: cannot read: {exc}") from exc
    except BaseException:
        finish_run(db, run_id, "interrupted", counts, errors)
        raise
    finally:
        reporter.finish()
    finish_run(db, run_id, "ok", counts, errors)
    return HarvestResult(run_id, counts, errors)
