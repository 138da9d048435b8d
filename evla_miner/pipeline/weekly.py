"""The weekly job: every stage in order over one database, once at a time.

Stages: seeds (``init``), ``harvest`` (a snapshot file, or the live arXiv API),
``classify``, ``pdfs`` (online only: PDFs and references of the papers the
classifier finds relevant, plus survey papers not read yet), ``graph``,
``propose``, then the ``digest`` (Markdown + HTML under ``<db dir>/reports/``) and,
when ``[notify]`` asks for it, its delivery (``notify``: e-mail, webhook; a failed
delivery is recorded on the run and never fails it).
PDFs come after classification on purpose: the classifier needs only titles and
abstracts, and a week of cs.RO is ~2,000 papers, 100 minutes of downloads at
arXiv's 3 s rule; only the relevant ones are worth reading. Each stage is
idempotent and records its own run, so the job can be re-run after a failure and
only does what is left; the weekly run row records every stage's counts, and
which stage failed.

Two runs never overlap: the job holds an exclusive ``flock`` on a lock file
beside the database for its whole duration. A second run does not wait — it
fails at once with a message naming the holder (cron simply tries again next
time, and a stuck run is visible instead of piling up waiters). The kernel
drops the lock when the process dies, so a killed run never leaves a stale lock.

``demo=True`` is fully offline: the bundled snapshot of real arXiv records,
no PDFs, no citation service.
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from ..core.db import db_dir, now_iso
from ..core.errors import EvlaError
from ..core.progress import Reporter
from ..core.runs import recorded_run
from ..core.settings import DEMO_SNAPSHOT, Settings
from ..ingest.harvest import harvest_arxiv
from ..ingest.seeds import init_db
from ..ingest.snapshot import HarvestResult, import_snapshot
from ..ingest.survey_bib import match_pending

if TYPE_CHECKING:  # imported when the graph runs, not at start-up
    from ..scoring.citations import CitationClient

DEFAULT_LIMIT = 20


class WeeklyLocked(EvlaError):
    """Another weekly run holds the lock."""


@dataclass
class WeeklyResult:
    run_id: int
    harvest: HarvestResult | None = None
    stages: dict = field(default_factory=dict)
    proposals: list[dict] = field(default_factory=list)
    digest: dict = field(default_factory=dict)
    deliveries: list = field(default_factory=list)  # review.notify.Delivery per channel


def lock_path(db: sqlite_utils.Database) -> Path:
    """``<db file>.weekly.lock`` beside the database (``db/memory.weekly.lock`` for in-memory
    dbs)."""
    for _, name, filename in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and filename:
            return Path(filename + ".weekly.lock")
    return db_dir(db) / "memory.weekly.lock"


@contextmanager
def weekly_lock(path: Path):
    """Hold an exclusive, non-blocking lock on ``path`` or raise ``WeeklyLocked``.

    The file says who holds it (pid, host, start time) for the error message.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            raise WeeklyLocked(
                f"another weekly run is in progress ({holder}); lock file {path}. "
                "This run exits without doing anything; try again when it has finished."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, started {now_iso()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def run_weekly(
    db: sqlite_utils.Database,
    snapshot: Path | None = None,
    since: date | None = None,
    until: date | None = None,
    demo: bool = False,
    reporter: Reporter | None = None,
    *,
    settings: Settings | None = None,
    limit: int | None = DEFAULT_LIMIT,
    online: bool | None = None,
    arxiv_client=None,
    pdf_client=None,
    citation_client: CitationClient | None = None,
    embedder=None,
    reports_dir: Path | None = None,
) -> WeeklyResult:
    """Run the pipeline under the weekly lock; returns every stage's counts, the top
    ``limit`` proposals and the digest paths.

    ``settings``: every config section, resolved once by the caller (the same
    object ``evla harvest``/``evla pdf`` would use; default: ``Settings.load()``).
    ``online`` (default: not ``demo``) allows the network stages: the live arXiv
    harvest when no snapshot is given, PDFs (``pdf_client``, default: the ``[pdf]``
    settings' client) and ``citation_client`` for the graph (None = references from
    PDFs only).
    A failing stage ends the run (status ``failed``, the stage named in the
    run's message) and raises ``EvlaError``; "nothing new" is a success.
    """
    reporter = reporter or Reporter()
    settings = settings or Settings.load()
    if demo:
        snapshot = snapshot or DEMO_SNAPSHOT
        online = False
        citation_client = None
    online = (not demo) if online is None else online
    if snapshot is None and not online:
        raise EvlaError(
            "offline run without a snapshot: nothing to harvest (give --snapshot FILE or --demo)"
        )
    with weekly_lock(lock_path(db)):
        return _run(
            db,
            snapshot,
            since,
            until,
            demo,
            reporter,
            settings,
            limit,
            online,
            arxiv_client,
            pdf_client,
            citation_client,
            embedder,
            reports_dir,
        )


def _run(
    db,
    snapshot,
    since,
    until,
    demo,
    reporter,
    settings,
    limit,
    online,
    arxiv_client,
    pdf_client,
    citation_client,
    embedder,
    reports_dir,
) -> WeeklyResult:
    # Imported here, not at the top: they pull scikit-learn, networkx and torch,
    # which every other `evla` command would otherwise pay for at start-up.
    from ..ingest.pdfs import process_pdfs
    from ..review.digest import write_digest
    from ..review.notify import deliver_digest
    from ..review.propose import list_proposals, reading_advice
    from ..scoring.classify import RELEVANT, score_papers
    from ..scoring.graph import build_graph

    params = {
        "snapshot": snapshot and str(snapshot),
        "demo": demo,
        "online": online,
        "since": since and since.isoformat(),
        "until": until and until.isoformat(),
        "limit": limit,
        "citations": getattr(citation_client, "service", None),
    }
    with recorded_run(db, "weekly", params) as run:
        result = WeeklyResult(run.id, stages=run.counts)
        stage = "init"

        def done(name: str, counts: dict) -> None:
            result.stages[name] = counts
            run.checkpoint()

        try:
            done("init", init_db(db, settings.seeds))

            stage = "harvest"
            if snapshot:
                result.harvest = import_snapshot(db, snapshot, since, until, reporter=reporter)
            else:
                result.harvest = harvest_arxiv(
                    db, arxiv_client, since, until, reporter=reporter, settings=settings.harvest
                )
            done("harvest", {"run_id": result.harvest.run_id, **result.harvest.counts})
            # the survey .bib's entries whose paper this harvest brought join the survey
            # before anything is classified or proposed
            result.stages["harvest"]["survey_bib_matched"] = len(match_pending(db))

            stage = "classify"
            done(
                "classify",
                score_papers(db, reporter, embedder=embedder, settings=settings.classify),
            )

            if online:
                stage = "pdfs"
                selection = (
                    RELEVANT if settings.pdf.min_relevance is None else settings.pdf.min_relevance
                )
                pdfs = process_pdfs(
                    db, pdf_client, selection=selection, reporter=reporter, settings=settings.pdf
                )
                done("pdfs", {key: value for key, value in pdfs.items() if key != "failures"})

            stage = "graph"
            done("graph", build_graph(db, citation_client=citation_client, reporter=reporter))

            stage = "propose"
            everything = list_proposals(db, since, until, None)
            result.proposals = everything[:limit] if limit else everything
            relevant = [p for p in everything if (p.get("relevance") or 0) >= RELEVANT]
            done(
                "propose",
                {
                    "unreviewed": len(everything),
                    "relevant": len(relevant),
                    "listed": len(result.proposals),
                    "reading": reading_advice(everything),
                },
            )

            stage = "digest"
            # The chart shows where this week's relevant candidates fall in the taxonomy,
            # not just the few listed: that is what tells a survey editor which part moves.
            paths = write_digest(
                db,
                run.id,
                result.stages,
                result.proposals,
                reports_dir or db_dir(db) / "reports",
                demo=demo,
                charted=relevant,
                chart_title=f"Relevant unreviewed candidates per pillar ({len(relevant)})",
            )
            result.digest = {kind: str(path) for kind, path in paths.items()}
            done("digest", dict(result.digest))

            # Delivery is a courtesy: a failed channel is reported and recorded, never raised.
            stage = "notify"
            result.deliveries = deliver_digest(settings.notify, paths, result.proposals)
            for delivery in result.deliveries:
                if not delivery.ok:
                    run.error(stage="notify", channel=delivery.channel, reason=delivery.detail)
            if result.deliveries:
                done("notify", {d.channel: "sent" if d.ok else "failed" for d in result.deliveries})
        except BaseException as exc:
            run.message = (
                f"interrupted during {stage}"
                if not isinstance(exc, Exception)
                else f"{stage} failed: {exc}"
            )
            if isinstance(exc, Exception):
                run.error(stage=stage, reason=str(exc))
                raise EvlaError(f"weekly run {run.id}: {run.message}") from exc
            raise
    return result
