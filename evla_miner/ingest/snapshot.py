"""Snapshot import: arXiv bulk-metadata files (JSON lines, plain or gzip) into ``papers``.

``import_snapshot`` streams the file, so a multi-GB dump needs constant memory, and
upserts by versionless id (see ``core.records`` for the rules). Bad lines (invalid
JSON, JSON nested too deeply, fields of the wrong type) are reported with their line
number and reason and skipped; the run goes on. A second record for an id already read
from the same file is merged by the same rules but counted (and reported) as a
duplicate, not again as inserted or updated, so ``lines`` is always the sum of
``inserted + updated + unchanged + outside_window + bad + duplicates``. The ids read
so far live in a temporary table, not in memory, so a full dump stays constant-memory.
Each batch is committed on its own, so an interrupted import keeps what it read and a
re-run finishes the job without duplicates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlite_utils

from ..core.errors import BadInput
from ..core.jsonl import JsonLine, iter_lines, open_binary
from ..core.progress import Reporter
from ..core.records import RecordError, paper_from_snapshot, upsert_papers
from ..core.runs import Run, recorded_run

BATCH_SIZE = 1000


@dataclass
class HarvestResult:
    run_id: int
    counts: dict
    errors: list[dict] = field(default_factory=list)


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

    Counts: ``lines``, ``inserted``, ``updated``, ``unchanged``, ``outside_window``, ``bad``,
    ``duplicates``.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"snapshot file not found: {path}")
    if since and until and since > until:
        raise BadInput(f"--since {since} is after --until {until}")
    reporter = reporter or Reporter()
    source = source or f"snapshot:{path.name}"
    params = {
        "file": str(path),
        "since": since and since.isoformat(),
        "until": until and until.isoformat(),
    }
    counts = {
        "lines": 0,
        "inserted": 0,
        "updated": 0,
        "unchanged": 0,
        "outside_window": 0,
        "bad": 0,
        "duplicates": 0,
    }
    with recorded_run(db, "snapshot", params, counts) as run:
        batch: list[tuple[int, dict]] = []
        read_ids = ReadIds(db)

        def flush() -> None:
            store_batch(db, batch, read_ids, run)
            batch.clear()
            run.checkpoint()

        handle, total = open_binary(path)
        reporter.start(f"Importing {path.name}", total=total, unit="bytes" if total else "items")
        try:
            with handle:
                for line in iter_lines(handle):
                    if total is not None:
                        reporter.advance(line.size)
                    run.counts["lines"] += 1
                    paper, reason = paper_from_line(line, source)
                    if paper is None:
                        run.counts["bad"] += 1
                        run.error(line=line.number, reason=reason)
                        continue
                    if not in_window(paper["published"], since, until):
                        run.counts["outside_window"] += 1
                        continue
                    batch.append((line.number, paper))
                    if total is None:
                        reporter.advance(1)
                    if len(batch) >= BATCH_SIZE:
                        flush()
                flush()
        except (OSError, EOFError) as exc:
            run.message = f"read error: {exc}"
            raise BadInput(f"{path}: cannot read: {exc}") from exc
        finally:
            read_ids.drop()
            reporter.finish()
    return HarvestResult(run.id, run.counts, run.errors)


def paper_from_line(line: JsonLine, source: str) -> tuple[dict | None, str | None]:
    """The paper one snapshot line holds, or ``(None, reason)`` for a bad line: the one
    validation every importer of the snapshot format applies."""
    if line.error is not None:
        return None, line.error
    try:
        return paper_from_snapshot(line.value, source=source), None
    except RecordError as exc:
        return None, str(exc)


def store_batch(
    db: sqlite_utils.Database, batch: list[tuple[int, dict]], read_ids: ReadIds, run: Run
) -> None:
    """Upsert a batch of ``(line number, paper)`` by the upsert rules, adding the outcomes to
    ``run.counts`` (``inserted``/``updated``/``unchanged``/``duplicates``): a second record
    for an id this import already read is merged the same way but counted, and reported,
    as a duplicate."""
    firsts, repeats = [], []
    for number, paper in batch:
        first_line = read_ids.first_line(paper["id"], number)
        if first_line is None:
            firsts.append(paper)
            continue
        repeats.append(paper)
        run.counts["duplicates"] += 1
        run.error(line=number, reason=f"duplicate id {paper['id']} (first at line {first_line})")
    for key, value in upsert_papers(db, firsts).items():
        run.counts[key] += value
    upsert_papers(db, repeats)  # merged by the same rules, counted as duplicates only


class ReadIds:
    """The ids this import has read, with the line each first appeared on, in a temporary
    table of the connection (gone when it closes; dropped when the import ends)."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        db.execute("drop table if exists temp.snapshot_ids")
        db.execute("create temp table snapshot_ids (id text primary key, line integer)")

    def first_line(self, paper_id: str, line: int) -> int | None:
        """None the first time ``paper_id`` is seen (it is remembered); else its first line."""
        row = self.db.execute(
            "select line from temp.snapshot_ids where id = ?", [paper_id]
        ).fetchone()
        if row:
            return row[0]
        self.db.execute("insert into temp.snapshot_ids (id, line) values (?, ?)", [paper_id, line])
        return None

    def drop(self) -> None:
        self.db.execute("drop table if exists temp.snapshot_ids")
