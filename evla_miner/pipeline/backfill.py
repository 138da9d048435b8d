"""Backfill: import, embed and score a whole arXiv metadata snapshot in one streaming pass.

``backfill`` reads the file once (JSON lines, plain or gzip; the full dump is ~2.7 M
lines), keeps the records that pass the category and date filters, and for each chunk of
them does what ``evla harvest --snapshot`` and then ``evla classify`` would do, with
their own functions: ``ingest.snapshot.paper_from_line`` validates a line and
``store_batch`` upserts by the same rules (bad lines are reported and skipped), the
embedding cache and the shipped vectors are used as ``score_papers`` uses them, and
``scoring.classify.score_rows`` computes the rows of ``scores``. Memory stays constant:
nothing but the chunks in flight is held.

Resuming. A chunk's papers, new vectors and scores are committed, then its row in
``backfill_progress`` (one per file + filters) moves to the chunk's last line and its
byte offset, so a backfill killed at any moment (even ``kill -9``) resumes on the next
run right after the last committed line (seeking, not re-parsing). Work of a chunk that
was cut short is done again, idempotently: its papers upsert as ``unchanged`` the second
time, its vectors come from the cache. A backfill that finished says so and does nothing.

Engines. ``local`` embeds and scores in this process. ``dask`` sends each chunk's
texts (and the vectors the cache already has) to a Dask cluster, where a worker plugin
holds one embedder and one classifier per worker process (the embedder loads its model
lazily, once per worker); the workers return vectors and score rows and the driver, the
only process that opens the SQLite database, stores them exactly as ``local`` does.
Chunks are streamed: at most ``2 x workers`` are running at once (``as_completed``
tops up as each finishes), and results are committed in file order, so the progress row
always describes a contiguous prefix of the file.

Why Dask and not Ray: ``distributed`` is pure Python, pip-installs on Python 3.11 with
no system dependencies or extra binaries (Ray ships a large platform wheel with its own
object store and daemons), ``LocalCluster`` runs the same code in tests and on one
machine (in-process threads or worker processes), a ``WorkerPlugin`` is exactly "load
the model once per worker", and ``as_completed`` plus a bound on submitted futures is
all the back-pressure a file stream needs. Ray Data's actor pools would fit too, but
for a driver that must stay the single SQLite writer, Dask's futures are the smaller
tool. The engine is the optional extra ``pip install 'evla-miner[cluster]'``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from ..core.db import dumps, loads, now_iso
from ..core.errors import BadInput, EvlaError
from ..core.jsonl import iter_lines, open_binary
from ..core.progress import Reporter
from ..core.runs import Run, pid_alive, recorded_run
from ..core.settings import ClassifySettings, models_dir
from ..ingest.snapshot import ReadIds, in_window, paper_from_line, store_batch
from ..scoring.chunk_scoring import ScoreResult, ScoreTask, embed_and_score
from ..scoring.classify import current_model, store_scores
from ..scoring.embed import (
    Embedder,
    VectorStore,
    cached_vectors,
    content_hash,
    embedder_from_settings,
    paper_text,
    preseed_cache,
    store_vectors,
)
from ..scoring.model import RELEVANT, ClassifierModel

ENGINES = ("local", "dask")
DEFAULT_CHUNK_SIZE = 256
MAX_CHUNK_LINES = 20_000  # a chunk also closes after this many lines, so a narrow filter
# over a huge file still commits its progress regularly
COUNT_KEYS = (
    "lines",
    "inserted",
    "updated",
    "unchanged",
    "duplicates",
    "outside_window",
    "other_categories",
    "bad",
    "scored",
    "already_scored",
    "embedded",
    "relevant",
    "chunks",
)


@dataclass
class BackfillResult:
    run_id: int
    counts: dict
    errors: list[dict] = field(default_factory=list)
    already_complete: bool = False
    resumed_after: int = 0  # the line a resumed backfill continued after (0: from the start)
    total_counts: dict = field(default_factory=dict)  # over every run of this backfill
    seconds: float = 0.0


# --- engines ------------------------------------------------------------------------------


class LocalEngine:
    """Embeds and scores in this process, chunk after chunk."""

    name = "local"

    def __init__(self, embedder: Embedder, model: ClassifierModel):
        self.embedder, self.model = embedder, model

    def describe(self) -> str:
        return "local (this process)"

    def map(self, items: Iterator[tuple[Any, ScoreTask]]) -> Iterator[tuple[Any, ScoreResult]]:
        for meta, task in items:
            yield meta, embed_and_score(task, self.embedder, self.model)

    def close(self) -> None:
        pass


def parse_categories(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"cs.RO,cs.CV"`` (or a list) -> ``("cs.CV", "cs.RO")``; ``cs.*`` keeps a whole archive."""
    if spec is None:
        return ()
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    cleaned = sorted({p.strip() for part in parts for p in part.split() if p.strip()})
    for category in cleaned:
        if not all(c.isalnum() or c in ".-*" for c in category) or "*" in category.rstrip("*"):
            raise BadInput(f"not an arXiv category: {category!r} (e.g. cs.RO, cs.*)")
    return tuple(cleaned)


def category_match(categories: str | None, wanted: tuple[str, ...]) -> bool:
    """Whether any of a paper's categories (primary or cross-list) is wanted."""
    if not wanted:
        return True
    if not categories:
        return False
    for category in categories.split():
        for w in wanted:
            if category == w or (w.endswith("*") and category.startswith(w[:-1])):
                return True
    return False


def backfill_key(path: Path, size: int, categories, since, until) -> str:
    """One backfill = one file (path and size) with one set of filters."""
    spec = dumps(
        {
            "file": str(path.resolve()),
            "size": size,
            "categories": list(categories),
            "since": since and since.isoformat(),
            "until": until and until.isoformat(),
        }
    )
    return hashlib.sha256(spec.encode()).hexdigest()


@dataclass
class _Chunk:
    batch: list[tuple[int, dict]]
    last_line: int
    offset: int  # uncompressed byte offset just after ``last_line``
    position: int  # bytes of the file on disk read so far (compressed for .gz)


def _read_chunks(
    handle: IO[bytes],
    raw: IO[bytes] | None,
    first_number: int,
    chunk_size: int,
    wanted: tuple[str, ...],
    since: date | None,
    until: date | None,
    source: str,
    run: Run,
) -> Iterator[_Chunk]:
    """Chunks of papers that pass the filters; counts lines, bad lines and filtered ones."""
    counts = run.counts
    batch: list[tuple[int, dict]] = []
    last_line, lines_in_chunk = first_number - 1, 0
    for line in iter_lines(handle, first_number=first_number):
        last_line = line.number
        lines_in_chunk += 1
        counts["lines"] += 1
        paper, reason = paper_from_line(line, source)
        if paper is None:
            counts["bad"] += 1
            run.error(line=line.number, reason=reason)
        elif not category_match(paper["categories"], wanted):
            counts["other_categories"] += 1
        elif not in_window(paper["published"], since, until):
            counts["outside_window"] += 1
        else:
            batch.append((line.number, paper))
        if len(batch) >= chunk_size or lines_in_chunk >= MAX_CHUNK_LINES:
            yield _Chunk(batch, last_line, handle.tell(), (raw or handle).tell())
            batch, lines_in_chunk = [], 0
    yield _Chunk(batch, last_line, handle.tell(), (raw or handle).tell())


def _engine(engine: str, embedder, model, address, workers, processes) -> Any:
    if engine == "local":
        return LocalEngine(embedder, model)
    try:
        from .dask_engine import DaskEngine
    except ImportError as exc:
        raise EvlaError(
            f"--engine dask needs Dask distributed ({exc}): pip install 'evla-miner[cluster]'"
        ) from exc
    return DaskEngine(embedder, model, address=address, workers=workers, processes=processes)


@contextmanager
def _opened(path: Path, offset: int) -> Iterator[tuple[IO[bytes], IO[bytes] | None]]:
    """The file positioned at ``offset`` (uncompressed), and the raw handle of a .gz."""
    handle, _ = open_binary(path)
    try:
        if offset:
            handle.seek(offset)  # a gzip stream decompresses up to it: no parsing
        yield handle, getattr(handle, "fileobj", None)
    finally:
        handle.close()


def backfill(
    db: sqlite_utils.Database,
    path: str | os.PathLike,
    categories: str | list[str] | tuple[str, ...] | None = None,
    since: date | None = None,
    until: date | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    embedder: Embedder | None = None,
    reporter: Reporter | None = None,
    settings: ClassifySettings | None = None,
    shipped: Path | None = None,
    shipped_vectors: bool = True,
    processes: bool = True,
    on_commit: Callable[[int], None] | None = None,
) -> BackfillResult:
    """Import, embed and score the records of a snapshot file that pass the filters, as one
    ``backfill`` run; resumes a backfill of the same file and filters that was cut short.

    ``categories``: keep records with any of these categories (``cs.*``: a whole archive);
    ``since``/``until``: on the first version's date, like ``harvest --snapshot``.
    ``engine``: ``local`` or ``dask`` (``address`` of a running scheduler, else a
    LocalCluster of ``workers`` processes, default one per core; ``processes=False`` runs
    its workers as threads of this process). ``embedder``: default the one ``settings``
    names. ``shipped_vectors=False`` ignores the vectors shipped in ``models/`` (a
    benchmark that must embed). ``on_commit(chunk number)`` is called after each chunk
    is committed.

    Counts: ``lines``, ``inserted``, ``updated``, ``unchanged``, ``duplicates``,
    ``outside_window``, ``other_categories``, ``bad``, ``scored``, ``already_scored``
    (papers the current model had scored before), ``embedded`` (texts the model had to
    embed), ``relevant`` (scored >= 0.5), ``chunks``.
    """
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"snapshot file not found: {path}")
    if since and until and since > until:
        raise BadInput(f"--since {since} is after --until {until}")
    if engine not in ENGINES:
        raise BadInput(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
    if chunk_size < 1:
        raise BadInput("--chunk-size must be at least 1")
    if workers is not None and workers < 1:
        raise BadInput("--workers must be at least 1")
    wanted = parse_categories(categories)
    reporter = reporter or Reporter()
    size = path.stat().st_size
    key = backfill_key(path, size, wanted, since, until)
    table = db.table("backfill_progress")
    progress = next(iter(db.query("select * from backfill_progress where key = ?", [key])), None)
    filters = {
        "categories": list(wanted),
        "since": since and since.isoformat(),
        "until": until and until.isoformat(),
    }
    params = {
        "file": str(path),
        **filters,
        "engine": engine,
        "address": address,
        "workers": workers,
        "chunk_size": chunk_size,
        "key": key,
    }
    counts = dict.fromkeys(COUNT_KEYS, 0)

    if progress and progress["status"] == "done":
        params["already_complete"] = progress["run_id"]
        with recorded_run(db, "backfill", params, counts) as run:
            run.message = (
                f"already complete (finished by run {progress['run_id']} at "
                f"{progress['finished']}); nothing done"
            )
        return BackfillResult(
            run.id,
            run.counts,
            already_complete=True,
            resumed_after=progress["line"],
            total_counts=loads(progress["counts"], {}),
        )

    resumed_after = progress["line"] if progress else 0
    offset = progress["offset"] if progress else 0
    previous_total = loads(progress["counts"], {}) if progress else {}
    params["resumed_after"] = resumed_after
    embedder = embedder or embedder_from_settings(settings)
    shipped = Path(shipped or models_dir())
    with recorded_run(db, "backfill", params, counts) as run:
        _claim(db, progress, key, path, size, filters, run)
        store = VectorStore.load(shipped)
        model, retrained = current_model(db, embedder, reporter, store, shipped)
        preseed_store = store if shipped_vectors else None
        read_ids = ReadIds(db)
        source = f"snapshot:{path.name}"

        def total() -> dict:
            return {k: previous_total.get(k, 0) + run.counts[k] for k in COUNT_KEYS}

        def tasks(chunks: Iterator[_Chunk]) -> Iterator[tuple[_Chunk, ScoreTask]]:
            for chunk in chunks:
                yield chunk, _prepare(db, chunk, read_ids, run, model, embedder, preseed_store)

        try:
            with _opened(path, offset) as (handle, raw):
                base = (raw or handle).tell()
                reporter.start(f"backfill {path.name}", total=max(size - base, 1), unit="bytes")
                if resumed_after:
                    reporter.note(f"resuming after line {resumed_after:,} (byte {offset:,})")
                chunks = _read_chunks(
                    handle,
                    raw,
                    resumed_after + 1,
                    chunk_size,
                    wanted,
                    since,
                    until,
                    source,
                    run,
                )
                runner = _engine(engine, embedder, model, address, workers, processes)
                run.update_params({**params, "engine_detail": runner.describe()})
                try:
                    shown = base
                    for chunk, result in runner.map(tasks(chunks)):
                        _commit(db, table, key, chunk, result, run, model, embedder, total)
                        reporter.advance(chunk.position - shown)
                        shown = chunk.position
                        elapsed = time.perf_counter() - started
                        reporter.describe(
                            f"backfill {path.name}: line {chunk.last_line:,}, "
                            f"{run.counts['scored']:,} scored, "
                            f"{run.counts['scored'] / max(elapsed, 1e-9):.1f} records/s"
                        )
                        if on_commit is not None:
                            on_commit(run.counts["chunks"])
                finally:
                    runner.close()
        except (OSError, EOFError) as exc:
            run.message = f"read error: {exc}"
            raise BadInput(f"{path}: cannot read: {exc}") from exc
        finally:
            read_ids.drop()
            reporter.finish()
        finished = now_iso()
        table.update(key, {"status": "done", "finished": finished, "updated": finished})
        run.counts.update(model=model.model_id, retrained=retrained)
        run.checkpoint()
    return BackfillResult(
        run.id,
        run.counts,
        run.errors,
        resumed_after=resumed_after,
        total_counts=total(),
        seconds=time.perf_counter() - started,
    )


def _claim(db, progress, key, path, size, filters, run: Run) -> None:
    """Make this run the owner of the backfill's progress row (refusing a live owner)."""
    if progress and progress["run_id"]:
        owner = db.execute(
            "select status, pid, host from runs where id = ?", [progress["run_id"]]
        ).fetchone()
        if (
            owner
            and owner[0] == "running"
            and owner[2] == socket.gethostname()
            and owner[1] != os.getpid()
            and pid_alive(owner[1])
        ):
            raise EvlaError(
                f"this backfill is running in run {progress['run_id']} (pid {owner[1]}); "
                "wait for it to finish"
            )
    now = now_iso()
    if progress is None:
        db.table("backfill_progress").insert(
            {
                "key": key,
                "file": str(path),
                "size": size,
                "params": dumps(filters),
                "line": 0,
                "offset": 0,
                "counts": dumps({}),
                "status": "running",
                "run_id": run.id,
                "started": now,
                "updated": now,
                "finished": None,
            }
        )
    else:
        db.table("backfill_progress").update(key, {"run_id": run.id, "updated": now})


def _prepare(db, chunk: _Chunk, read_ids: ReadIds, run: Run, model, embedder, store) -> ScoreTask:
    """Driver side, before the engine: upsert the chunk's papers, then gather the stored
    texts of those the current model has not scored and the vectors the cache has."""
    store_batch(db, chunk.batch, read_ids, run)
    ids = list(dict.fromkeys(paper["id"] for _, paper in chunk.batch))
    rows: dict[str, dict] = {}
    scored: set[str] = set()
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" * len(part))
        for row in db.query(f"select id, title, abstract from papers where id in ({marks})", part):
            rows[row["id"]] = row
        scored.update(
            r[0]
            for r in db.execute(
                f"select paper_id from scores where model = ? and paper_id in ({marks})",
                [model.model_id, *part],
            )
        )
    todo = [i for i in ids if i not in scored]
    run.counts["already_scored"] += len(ids) - len(todo)
    texts = [paper_text(rows[i]["title"], rows[i]["abstract"]) for i in todo]
    if texts:
        preseed_cache(db, texts, embedder.model_id, store)
    cached = cached_vectors(db, embedder.model_id, [content_hash(t) for t in texts])
    return ScoreTask(todo, texts, cached, now_iso())


def _commit(
    db,
    table,
    key,
    chunk: _Chunk,
    result: ScoreResult,
    run: Run,
    model,
    embedder,
    total: Callable[[], dict],
) -> None:
    """Driver side, after the engine: vectors into the cache, rows into ``scores``, then
    the progress row (last, so a kill before it only means this chunk is done again)."""
    if result.hashes:
        store_vectors(db, embedder.model_id, result.hashes, result.vectors)
    store_scores(db, result.scores)
    run.counts["embedded"] += len(result.hashes)
    run.counts["scored"] += len(result.scores)
    run.counts["relevant"] += sum(1 for r in result.scores if r["relevance"] >= RELEVANT)
    run.counts["chunks"] += 1
    with db.conn:
        table.update(
            key,
            {
                "line": chunk.last_line,
                "offset": chunk.offset,
                "counts": json.dumps(total()),
                "updated": now_iso(),
            },
        )
    run.checkpoint()
