"""PDF stage: download candidate papers' PDFs politely, extract text, sections and references.

``process_pdfs`` is what ``evla pdf`` and the weekly job call. It is resumable
and idempotent:

* a paper whose PDF of its latest version is already extracted is skipped;
* a failure (HTTP error, HTML error page, oversized body, corrupt or encrypted
  PDF, image-only scan, time limit) is stored on the paper's ``pdfs`` row as one
  line with an attempt count and retried on the next run;
* re-extraction replaces the paper's rows in ``references``, never appends.

Downloads go through one ``PdfClient`` on the shared ``core.http.HttpClient``:
one ``requests`` session, one request at a time, at least ``min_interval``
seconds apart (arXiv asks for 3 s), one deadline per download, content-type and
``%PDF`` checks, a size cap, sha256 of what was stored.
Extraction, the CPU-bound part, runs in a process pool while the next download
waits out its politeness delay.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import sqlite_utils

from ..core.db import db_dir, dumps, now_iso
from ..core.errors import BadInput, EvlaError, one_line
from ..core.http import BodyTooLarge, HttpClient, Response, Transport, TransportError
from ..core.progress import Reporter
from ..core.runs import recorded_run
from ..core.settings import PdfSettings
from .pdf_text import (
    DEFAULT_MAX_PAGES,
    DEFAULT_TIME_LIMIT,
    PdfError,
    extract_document,
    sniff_not_pdf,
)
from .references import PaperIndex, match_references, parse_references

DEFAULT_BASE_URL = "https://arxiv.org/pdf/"
DEFAULT_INTERVAL = 3.0  # seconds between requests (arXiv's rule)
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
ACCEPTED_TYPES = (
    "application/pdf",
    "application/x-pdf",
    "application/octet-stream",
    "binary/octet-stream",
)


class DownloadError(EvlaError):
    """A download that did not give a usable PDF; the message is one line."""


class PdfClient:
    """The one client for fetching PDFs (arXiv by default; tests point ``base_url`` at 127.0.0.1).

    Requests go through ``core.http.HttpClient``: the tool's User-Agent, one
    request at a time at least ``min_interval`` seconds apart, one deadline of
    ``timeout`` seconds per download covering the whole body, the size cap.
    No retries inside a run: a failed download is stored and tried again on
    the next run.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        min_interval: float = DEFAULT_INTERVAL,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        transport: Transport | None = None,
    ):
        if min_interval < 0:
            raise BadInput("the interval between requests cannot be negative")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.min_interval = min_interval
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.http = HttpClient(
            name="PDF",
            min_interval=min_interval,
            timeout=timeout,
            retries=0,
            max_bytes=max_bytes,
            transport=transport,
        )

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    def url_for(self, paper_id: str, version: int | None) -> str:
        return f"{self.base_url}{paper_id}" + (f"v{version}" if version else "")

    def fetch(self, url: str) -> bytes:
        """GET one PDF; raises ``DownloadError`` saying why the body is not a usable PDF."""
        try:
            response = self.http.request(
                "GET", url, retry_statuses=(), check_headers=_check_pdf_headers
            )
        except BodyTooLarge as exc:
            raise DownloadError(str(exc)) from None
        except TransportError as exc:
            raise DownloadError(f"request failed: {exc.kind}: {one_line(exc)}") from None
        reason = sniff_not_pdf(response.body[:1024])
        if reason:
            raise DownloadError(reason)
        return response.body

    def download(self, url: str, dest: Path) -> tuple[str, int]:
        """Fetch ``url`` into ``dest`` (atomically: a killed run leaves no half file); returns
        (sha256, size)."""
        data = self.fetch(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_suffix(dest.suffix + ".part")
        partial.write_bytes(data)
        os.replace(partial, dest)
        return hashlib.sha256(data).hexdigest(), len(data)


def _check_pdf_headers(head: Response) -> None:
    """Refuse an answer before its body is read: not a 200, or not a PDF's content type."""
    if head.status != 200:
        raise DownloadError(f"HTTP {head.status} {head.reason}".strip())
    content_type = (head.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type and content_type not in ACCEPTED_TYPES:
        raise DownloadError(f"not a PDF: content type {content_type}")


def pdf_filename(paper_id: str, version: int | None) -> str:
    """``2406.04339v2.pdf``; old-style ids lose their slash: ``hep-th_9901001v1.pdf``."""
    return f"{paper_id.replace('/', '_')}v{version or 1}.pdf"


# --- extraction (runs in worker processes) ------------------------------------------


def extract_file(
    path: str, max_pages: int = DEFAULT_MAX_PAGES, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> dict:
    """Text, sections and parsed references of one PDF file, or ``{"error": one line}``.

    Never raises: whatever a PDF does to the parser becomes an error string, so
    one bad file cannot take the pool (or the run) down.
    """
    try:
        document = extract_document(path, max_pages=max_pages, time_limit=time_limit)
        references = parse_references(document.reference_lines)
    except PdfError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a parser bug must not stop the batch
        return {"error": f"extraction failed: {type(exc).__name__}: {one_line(exc)}"}
    return {
        "error": None,
        "pages": document.pages,
        "text": document.text,
        "sections": document.sections,
        "reference_source": document.reference_source,
        "references": references,
    }


class _Extractor:
    """Runs ``extract_file`` inline (``workers=0``) or in a process pool that is
    rebuilt if a worker dies (MuPDF crashing on a hostile file)."""

    def __init__(self, workers: int, max_pages: int, time_limit: float | None):
        self.workers = workers
        self.args = (max_pages, time_limit)
        self.pool: ProcessPoolExecutor | None = None

    def submit(self, path: str) -> Future:
        if self.workers == 0:
            future: Future = Future()
            future.set_result(extract_file(path, *self.args))
            return future
        if self.pool is None:
            # spawn, not fork: the parent may run a progress-bar thread.
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        try:
            return self.pool.submit(extract_file, path, *self.args)
        except BrokenProcessPool:
            self.pool = None
            return self.submit(path)

    def result(self, future: Future) -> dict:
        try:
            return future.result()
        except BrokenProcessPool:
            self.pool = None
            return {"error": "extraction crashed its worker process"}
        except Exception as exc:
            return {"error": f"extraction failed: {type(exc).__name__}: {one_line(exc)}"}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


# --- the stage ---------------------------------------------------------------------


def select_papers(
    db: sqlite_utils.Database,
    selection="all",
    include_survey: bool = True,
    limit: int | None = None,
    max_attempts: int | None = None,
) -> list[dict]:
    """Papers whose PDF needs work: never tried, failed before, downloaded but not
    extracted, or extracted from an older version than the paper's latest.

    ``selection``: ``"all"`` or a minimum ``scores.relevance`` (survey papers are
    added when ``include_survey``: their references feed the citation graph).
    Most relevant first, so a ``limit`` takes the best candidates.
    """
    params: list = []
    if selection == "all":
        where = "1"
        order = "p.published desc, p.id"
    else:
        try:
            threshold = float(selection)
        except (TypeError, ValueError):
            raise BadInput(
                f"selection must be 'all' or a relevance threshold, not {selection!r}"
            ) from None
        where = "s.relevance >= ?"
        params.append(threshold)
        if include_survey:
            where = f"({where} or p.id in (select paper_id from survey))"
        order = "coalesce(s.relevance, 2) desc, p.id"
    needs_work = (
        "(f.paper_id is null or f.status != 'extracted'"
        " or coalesce(f.version, 0) < coalesce(p.version, 1))"
    )
    if max_attempts:
        needs_work += " and coalesce(f.attempts, 0) < ?"
        params.append(max_attempts)
    sql = f"""
        select p.id, p.version, f.status, f.stage, f.path, f.version as file_version, f.attempts
        from papers p
        left join scores s on s.paper_id = p.id
        left join pdfs f on f.paper_id = p.id
        where {where} and {needs_work}
        order by {order}
    """
    if limit is not None:
        sql += " limit ?"
        params.append(int(limit))
    return list(db.query(sql, params))


def client_from_settings(settings: PdfSettings, transport: Transport | None = None) -> PdfClient:
    """The PDF client the ``[pdf]`` settings describe; ``transport`` replaces the HTTP engine
    (tests replay recorded answers through it), the deadline and size cap stay the settings'."""
    return PdfClient(
        base_url=settings.base_url,
        min_interval=settings.interval,
        max_bytes=int(settings.max_mb * 2**20),
        timeout=settings.timeout_seconds,
        transport=transport,
    )


def process_pdfs(
    db: sqlite_utils.Database,
    client: PdfClient | None = None,
    selection="all",
    limit: int | None = None,
    reporter: Reporter | None = None,
    include_survey: bool = True,
    settings: PdfSettings | None = None,
    max_attempts: int | None = None,
) -> dict:
    """Download and extract the selected papers' PDFs; returns counts.

    ``settings``: the resolved ``[pdf]`` section (workers, page and time limits;
    the client too when ``client`` is None). Workers default to the number of
    cores; ``0`` extracts in this process.

    Counts: ``selected``, ``downloaded``, ``download_failed``, ``extracted``,
    ``extract_failed``, ``references``, ``matched`` (references linked to a paper
    in the db), ``requests``.
    """
    settings = settings or PdfSettings()
    client = client or client_from_settings(settings)
    reporter = reporter or Reporter()
    workers = (os.cpu_count() or 1) if settings.workers is None else max(0, int(settings.workers))
    max_pages, time_limit = settings.max_pages, settings.time_limit
    base = db_dir(db)
    rows = select_papers(db, selection, include_survey, limit, max_attempts)
    params = {
        "selection": selection,
        "limit": limit,
        "include_survey": include_survey,
        "base_url": client.base_url,
    }
    counts = {
        "selected": len(rows),
        "downloaded": 0,
        "download_failed": 0,
        "extracted": 0,
        "extract_failed": 0,
        "references": 0,
        "matched": 0,
        "requests": 0,
    }
    with recorded_run(db, "pdf", params, counts) as run:
        counts = run.counts
        index = PaperIndex.build(db)
        extractor = _Extractor(workers, max_pages, time_limit)
        pending: dict[Future, dict] = {}

        def record_failure(paper: dict, stage: str, reason: str, extra: dict | None = None) -> None:
            counts[f"{stage}_failed"] += 1
            run.error(id=paper["id"], stage=stage, reason=reason)
            previous = db.execute(
                "select attempts from pdfs where paper_id = ?", [paper["id"]]
            ).fetchone()
            db.table("pdfs").upsert(
                {
                    "paper_id": paper["id"],
                    **(extra or {}),
                    "status": "failed",
                    "stage": stage,
                    "error": reason,
                    "attempts": ((previous[0] if previous else 0) or 0) + 1,
                    "updated": now_iso(),
                },
                pk="paper_id",
            )

        def collect(block: bool) -> None:
            if not pending:
                return
            done, _ = wait(list(pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
            for future in done:
                paper = pending.pop(future)
                result = extractor.result(future)
                with db.conn:
                    if result["error"]:
                        record_failure(paper, "extract", result["error"])
                    else:
                        stored, matched = _store_extraction(db, paper["id"], result, index)
                        counts["extracted"] += 1
                        counts["references"] += stored
                        counts["matched"] += matched
                reporter.advance(1)
                run.checkpoint()

        reporter.start("PDFs", total=len(rows))
        try:
            for paper in rows:
                version = paper["version"] or 1
                relative = Path("pdfs") / pdf_filename(paper["id"], version)
                path = base / relative
                have_file = (
                    (
                        paper["status"] in ("downloaded", "extracted")
                        or (paper["status"] == "failed" and paper["stage"] == "extract")
                    )
                    and paper["file_version"] == version
                    and path.is_file()
                )
                if not have_file:
                    url = client.url_for(paper["id"], version)
                    before = client.requests_made
                    try:
                        sha256, size = client.download(url, path)
                    except DownloadError as exc:
                        counts["requests"] += client.requests_made - before
                        with db.conn:
                            record_failure(
                                paper, "download", str(exc), {"version": version, "url": url}
                            )
                        reporter.advance(1)
                        collect(block=False)
                        continue
                    counts["requests"] += client.requests_made - before
                    counts["downloaded"] += 1
                    with db.conn:
                        db.table("pdfs").upsert(
                            {
                                "paper_id": paper["id"],
                                "version": version,
                                "path": relative.as_posix(),
                                "url": url,
                                "sha256": sha256,
                                "size": size,
                                "status": "downloaded",
                                "stage": None,
                                "error": None,
                                "attempts": 0,
                                "downloaded_at": now_iso(),
                                "updated": now_iso(),
                            },
                            pk="paper_id",
                        )
                pending[extractor.submit(str(path))] = paper
                collect(block=False)
            while pending:
                collect(block=True)
        finally:
            extractor.close()
            reporter.finish()
    return {**counts, "run_id": run.id, "failures": run.errors}


def _store_extraction(
    db: sqlite_utils.Database, paper_id: str, result: dict, index: PaperIndex
) -> tuple[int, int]:
    """Write one paper's text and sections, and replace its references (reruns stay idempotent)."""
    # a paper citing an earlier version of itself is no edge
    references = match_references(db, result["references"], index, exclude_id=paper_id)
    matched = sum(ref["matched_id"] is not None for ref in references)
    db.table("pdfs").update(
        paper_id,
        {
            "status": "extracted",
            "stage": None,
            "error": None,
            "attempts": 0,
            "pages": result["pages"],
            "text": result["text"],
            "sections": dumps(result["sections"]),
            "reference_source": result["reference_source"],
            "references": len(references),
            "extracted_at": now_iso(),
            "updated": now_iso(),
        },
    )
    db.execute('delete from "references" where paper_id = ?', [paper_id])
    if references:
        db.table("references").insert_all(
            [
                {
                    "paper_id": paper_id,
                    "position": ref["position"],
                    "raw": ref["raw"],
                    "arxiv_id": ref["arxiv_id"],
                    "doi": ref["doi"],
                    "title": ref["title"],
                    "year": ref["year"],
                    "authors": dumps(ref["authors"]),
                    "matched_id": ref["matched_id"],
                    "match_method": ref["match_method"],
                }
                for ref in references
            ]
        )
    return len(references), matched


FAILURES_LISTED_ONE_BY_ONE = 5


def failure_lines(failures: list[dict], *, ids_shown: int = 6) -> list[str]:
    """What went wrong in a run, for the terminal: one line per paper when there are
    few failures, else one line per (stage, reason) with the number of papers and
    the first ids, so ten identical ``HTTP 404`` lines become one.

    Why: the reasons used to be only in the database, so a run where every
    download failed looked like a quiet success.
    """
    if len(failures) <= FAILURES_LISTED_ONE_BY_ONE:
        return [f"{f['id']}: {f['stage']} failed: {f['reason']}" for f in failures]
    groups: dict[tuple[str, str], list[str]] = {}
    for failure in failures:
        groups.setdefault((failure["stage"], failure["reason"]), []).append(failure["id"])
    lines = []
    for (stage, reason), ids in sorted(groups.items(), key=lambda item: -len(item[1])):
        shown = ", ".join(ids[:ids_shown]) + (", ..." if len(ids) > ids_shown else "")
        papers = f"{len(ids)} paper{'s' if len(ids) != 1 else ''}"
        lines.append(f"{stage} failed: {reason} ({papers}: {shown})")
    return lines


def nothing_succeeded(counts: dict) -> bool:
    """A run that selected papers and read none of them: the caller should fail."""
    return counts["selected"] > 0 and counts["extracted"] == 0
