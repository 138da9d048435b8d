"""Live harvest: bring new arXiv papers into the ``papers`` table from the arXiv API.

``harvest_arxiv`` pulls new papers from the arXiv API (``arxiv_client``) with
the same upsert rules. Its plan (query x date window) and paging progress live
in ``harvest_slices``, committed after every page, so a run killed at any
moment is resumed by the next one. Each window is reconciled: the ids received are
kept per slice, a stale page (the previous page again) or a short one is asked for
again, and a window holding fewer distinct papers than arXiv's ``totalResults`` is
flagged instead of trusted; ``harvest_watermarks`` remembers per query
how far a successful run got, and the next run starts 2 days before that.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import UTC, date, datetime, time, timedelta
from time import sleep
from typing import Any

import sqlite_utils

from ..core.db import dumps, loads, now_iso
from ..core.errors import BadInput, EvlaError
from ..core.http import Transport
from ..core.progress import Reporter
from ..core.records import RecordError, check_paper, clean_text, split_arxiv_id, upsert_papers
from ..core.runs import pid_alive, recorded_run
from ..core.settings import HarvestSettings, clean_queries
from .arxiv_client import ArxivClient
from .snapshot import HarvestResult

API_SOURCE = "arxiv-api"
MINUTE = timedelta(minutes=1)
CATEGORY_TERM = re.compile(r"\bcat:([A-Za-z-]+(?:\.[A-Za-z-]+)?)")
NAME_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}


def query_categories(query: str) -> set[str]:
    """The categories a query harvests through (its ``cat:`` terms), for cross-list flags."""
    return set(CATEGORY_TERM.findall(query))


def _parse_author(name: str) -> list[str]:
    """``'Jane Q. Doe Jr.'`` -> ``['Doe', 'Jane Q.', 'Jr.']``, the snapshot's [last, first,
    suffix]."""
    parts = name.split()
    suffix = ""
    if len(parts) > 2 and parts[-1].lower().rstrip(",") in NAME_SUFFIXES:
        suffix = parts.pop()
    if not parts:
        return ["", "", suffix]
    return [parts[-1], " ".join(parts[:-1]), suffix]


def paper_from_result(
    result, categories_harvested: set[str] | None = None, source: str = API_SOURCE
) -> dict:
    """One ``arxiv.Result`` -> the paper dict ``paper_from_snapshot`` builds (same keys,
    same forms).

    The API gives the first-version date (``published``) and the latest
    version's (``updated``) but not the dates in between, so the history holds
    v1 and vN; the upsert rules merge it with whatever was seen before.
    ``cross_list`` is 1 when the paper's primary category is not one the
    query harvested through.
    """
    paper_id, version = split_arxiv_id(result.get_short_id())
    version = version or 1
    published = result.published.date().isoformat()
    updated = result.updated.date().isoformat()
    versions = [{"version": 1, "created": published}]
    if version > 1:
        versions.append({"version": version, "created": updated})
    primary = result.primary_category or (result.categories[0] if result.categories else None)
    categories = [primary] if primary else []
    categories += [c for c in result.categories if c and c not in categories]
    names = [name for name in (clean_text(a.name) for a in result.authors) if name]
    return check_paper(
        {
            "id": paper_id,
            "version": version,
            "versions": versions,
            "title": clean_text(result.title),
            "authors": ", ".join(names) or None,
            "authors_parsed": [_parse_author(n) for n in names] or None,
            "abstract": clean_text(result.summary),
            "categories": " ".join(categories) or None,
            "primary_category": primary,
            "cross_list": int(bool(categories_harvested and primary not in categories_harvested)),
            "published": published,
            "updated": updated,
            "doi": clean_text(result.doi),
            "journal_ref": clean_text(result.journal_ref),
            "comments": clean_text(result.comment),
            "report_no": None,
            "license": None,
            "pdf_url": result.pdf_url,
            "source": source,
        }
    )


def _utc_minute(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def _as_bound(value, end: bool) -> datetime | None:
    """A ``--since``/``--until`` value as a UTC minute; a bare day covers the whole day."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc_minute(value)
    if isinstance(value, date):
        moment = datetime.combine(value, time(23, 59) if end else time(0, 0), tzinfo=UTC)
        return moment
    raise BadInput(f"not a date: {value!r}")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window_query(query: str, window_from: str, window_to: str) -> str:
    """The query restricted to a submission-date window (arXiv's minute-resolution range syntax)."""
    fmt = "%Y%m%d%H%M"
    return (
        f"({query}) AND submittedDate:[{_from_iso(window_from).strftime(fmt)} TO "
        f"{_from_iso(window_to).strftime(fmt)}]"
    )


def _previous_unfinished_run(db, queries: dict, since, until) -> dict | None:
    """The latest arXiv run that did not finish and still has pending slices, if this
    run should take it over.

    A run that is still alive on this host is an error: two harvesters would
    break arXiv's one-connection rule.
    """
    last_ok = db.execute(
        "select coalesce(max(id), 0) from runs where kind = 'arxiv' and status = 'ok'"
    ).fetchone()[0]
    for run in db.query(
        "select * from runs where kind = 'arxiv' and status != 'ok' and id > ? order by id desc",
        [last_ok],
    ):
        params = loads(run["params"], {})
        if (
            run["status"] == "running"
            and params.get("host") == socket.gethostname()
            and params.get("pid")
            and pid_alive(params["pid"])
            and params["pid"] != os.getpid()
        ):
            raise EvlaError(
                f"another arXiv harvest is running (run {run['id']}, pid {params['pid']}); wait "
                "for it to finish"
            )
        pending = db.execute(
            "select count(*) from harvest_slices where run_id = ? and status = 'pending'",
            [run["id"]],
        ).fetchone()[0]
        if not pending:
            continue
        same_queries = params.get("queries") == queries
        same_window = (since is None or params.get("since") == _iso(since)) and (
            until is None or params.get("until") == _iso(until)
        )
        return run if same_queries and same_window else None
    return None


def _plan(
    db, run_id: int, queries: dict, since, until, now: datetime, settings: HarvestSettings
) -> None:
    """Insert one pending slice per query: [since or watermark - overlap or now - initial_days,
    until or now]."""
    window_to = until or now
    for name, query in queries.items():
        if since is not None:
            start = since
        else:
            mark = _watermark(db, query)
            start = (
                (_from_iso(mark) - timedelta(days=settings.overlap_days))
                if mark
                else now - timedelta(days=settings.initial_days)
            )
        if start > window_to:
            raise BadInput(f"--since {_iso(start)} is after --until {_iso(window_to)}")
        _insert_slice(db, run_id, name, query, start, window_to)


def _insert_slice(
    db, run_id: int, name: str, query: str, window_from: datetime, window_to: datetime
) -> None:
    db["harvest_slices"].insert(
        {
            "run_id": run_id,
            "query_name": name,
            "query": query,
            "window_from": _iso(window_from),
            "window_to": _iso(window_to),
            "total": None,
            "next_start": 0,
            "records": 0,
            "pages": 0,
            "status": "pending",
            "note": None,
        }
    )


def _watermark(db, query: str) -> str | None:
    """The end of the window this query has completely harvested, if any."""
    row = db.execute("select until from harvest_watermarks where query = ?", [query]).fetchone()
    return row[0] if row else None


def _expects_results(db, query: str, window_from: str, window_to: str, run_id: int) -> bool:
    """Whether an empty answer for this window would be suspicious: the query found papers before,
    and the window is at least a day long."""
    if _from_iso(window_to) - _from_iso(window_from) < timedelta(days=1):
        return False
    return bool(
        db.execute(
            "select 1 from harvest_slices where query = ? and total > 0 and run_id != ? limit 1",
            [query, run_id],
        ).fetchone()
    )


def client_from_settings(
    settings: HarvestSettings,
    on_retry=None,
    endpoint: str | None = None,
    transport: Transport | None = None,
) -> ArxivClient:
    """The arXiv client the ``[harvest]`` settings describe; ``transport`` replaces the HTTP
    engine (tests replay recorded answers through it), the deadline stays the settings' one."""
    return ArxivClient(
        endpoint=endpoint,
        transport=transport,
        delay_seconds=settings.delay_seconds,
        page_size=settings.page_size,
        retries=settings.retries,
        backoff_seconds=settings.backoff_seconds,
        max_backoff_seconds=settings.max_backoff_seconds,
        timeout_seconds=settings.timeout_seconds,
        on_retry=on_retry,
    )


def harvest_arxiv(
    db: sqlite_utils.Database,
    client: ArxivClient | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    queries: dict | list | None = None,
    reporter: Reporter | None = None,
    settings: HarvestSettings | None = None,
) -> HarvestResult:
    """Harvest new papers from the arXiv API into ``papers``; returns the run id, counts and flags.

    ``client``: an ``ArxivClient`` (None = built from ``settings``, retries
    reported through ``reporter``). ``since``/``until``: submission-date
    window (a date covers its whole day); by default from each query's
    watermark minus ``overlap_days`` (or ``initial_days`` back) to now.
    ``queries``: ``{name: query}`` or a list of query strings; default: the
    settings' queries. ``settings``: the resolved ``[harvest]`` section (default:
    the built-in defaults). A run that was killed or failed is resumed from its
    last committed page when the next run has the same queries and window.

    Counts: ``queries``, ``windows``, ``pages``, ``records``, ``inserted``,
    ``updated``, ``unchanged``, ``split``, ``flagged``, ``empty``, ``requests``,
    ``retries``, ``rerequests`` (stale or short pages asked for again), ``missing``
    (papers arXiv counted in a window that never arrived). ``errors`` lists each
    flagged window: a query that normally has results and returned nothing even
    after retries, or a window that stayed incomplete (fewer distinct papers than
    arXiv's totalResults). A flagged window keeps the watermark before it.
    """
    reporter = reporter or Reporter()
    settings = settings or HarvestSettings()
    if client is None:
        client = client_from_settings(settings, on_retry=reporter.note)
    if queries is None:
        queries = dict(settings.queries)
    elif not isinstance(queries, dict):
        queries = {f"q{i}": q for i, q in enumerate(queries, start=1)}
    queries = clean_queries(queries)
    since_at, until_at = _as_bound(since, end=False), _as_bound(until, end=True)
    if since_at and until_at and since_at > until_at:
        raise BadInput(f"--since {_iso(since_at)} is after --until {_iso(until_at)}")
    now = _utc_minute(datetime.now(UTC))
    cap = int(settings.max_results_per_query)

    previous = _previous_unfinished_run(db, queries, since_at, until_at)
    params: dict[str, Any] = {
        "queries": queries,
        "endpoint": client.endpoint,
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    if previous:
        old = loads(previous["params"], {})
        params.update(since=old.get("since"), until=old.get("until"), resumed_from=previous["id"])
    else:
        params.update(since=since_at and _iso(since_at), until=_iso(until_at or now))
    counts = {
        key: 0
        for key in (
            "queries",
            "windows",
            "pages",
            "records",
            "inserted",
            "updated",
            "unchanged",
            "split",
            "flagged",
            "empty",
            "requests",
            "retries",
            "rerequests",
            "missing",
        )
    }
    counts["queries"] = len(queries)
    requests_before, retries_before = client.requests_made, client.retries_made

    with recorded_run(db, "arxiv", params, counts) as run:
        if previous:
            with db.conn:
                db.execute(
                    "update harvest_slices set run_id = ? where run_id = ?",
                    [run.id, previous["id"]],
                )
                if previous["status"] in ("running", "interrupted"):
                    db.table("runs").update(
                        previous["id"],
                        {
                            "status": "interrupted",
                            "finished": now_iso(),
                            "message": f"resumed by run {run.id}",
                        },
                    )
            reporter.note(
                f"resuming run {previous['id']} ({previous['status']}) from its last committed page"
            )
        else:
            _plan(db, run.id, queries, since_at, until_at or now, now, settings)

        def checkpoint() -> None:
            run.counts["requests"] = client.requests_made - requests_before
            run.counts["retries"] = client.retries_made - retries_before
            run.checkpoint()

        # A resumed run with no explicit window finishes the old window, then goes on up to now.
        extend_to_now = bool(previous) and since_at is None and until_at is None
        try:
            while True:
                row = db.execute(
                    "select id from harvest_slices where run_id = ? and status = 'pending' order "
                    "by id limit 1",
                    [run.id],
                ).fetchone()
                if row is None:
                    if not extend_to_now:
                        break
                    extend_to_now = False
                    _advance_watermarks(db, run.id, queries)
                    # only queries whose old window completed; a flagged one waits for the next run
                    old_until = params["until"]
                    caught_up = {
                        name: q
                        for name, q in queries.items()
                        if (_watermark(db, q) or "") >= old_until
                    }
                    if caught_up and old_until < _iso(now):
                        _plan(db, run.id, caught_up, None, now, now, settings)
                        params["until"] = _iso(now)
                        run.update_params(params)
                    continue
                _harvest_slice(
                    db,
                    client,
                    db.table("harvest_slices").get(row[0]),
                    cap,
                    run.counts,
                    run.errors,
                    reporter,
                    checkpoint,
                )
        finally:
            checkpoint()
            reporter.finish()
        run.counts["windows"] = db.execute(
            "select count(*) from harvest_slices where run_id = ? and status != 'split'", [run.id]
        ).fetchone()[0]
        checkpoint()
        _advance_watermarks(db, run.id, queries)
        if run.errors:
            run.message = f"{len(run.errors)} window(s) flagged: " + "; ".join(
                f"{e['query']} {e['window']}" for e in run.errors
            )
    return HarvestResult(run.id, run.counts, run.errors)


def _harvest_slice(
    db,
    client,
    slice_row: dict,
    cap: int,
    counts: dict,
    errors: list,
    reporter: Reporter,
    checkpoint,
) -> None:
    """Page through one (query, window) slice, committing after every page; split it if it is too
    big."""
    table = db["harvest_slices"]
    sid, name, query = slice_row["id"], slice_row["query_name"], slice_row["query"]
    wfrom, wto = slice_row["window_from"], slice_row["window_to"]
    full_query = window_query(query, wfrom, wto)
    harvested_through = query_categories(query)
    start = slice_row["next_start"] or 0
    pages = slice_row["pages"] or 0
    total = slice_row["total"]
    label = f"{name} {wfrom[:10]}..{wto[:10]}"
    capped = False
    if total is not None:
        reporter.start(f"arXiv {label}", total=min(total, cap))
        reporter.advance(start)
    expect = start == 0 and _expects_results(db, query, wfrom, wto, slice_row["run_id"])
    seen = _slice_ids(db, sid)
    gaps = loads(slice_row.get("gaps"), [])
    while True:
        page = client.fetch_page(full_query, start=start, expect_results=expect)
        if start == 0 and page.total > cap and not capped:
            left, right = _from_iso(wfrom), _from_iso(wto)
            if right - left >= 2 * MINUTE:
                middle = (left + (right - left) / 2).replace(second=0, microsecond=0)
                with db.conn:
                    for a, b in ((left, middle), (middle + MINUTE, right)):
                        _insert_slice(db, slice_row["run_id"], name, query, a, b)
                    table.update(
                        sid,
                        {
                            "status": "split",
                            "total": page.total,
                            "note": f"{page.total:,} results > {cap:,} per query",
                        },
                    )
                counts["split"] += 1
                reporter.note(
                    f"arXiv: {label} has {page.total:,} results (> {cap:,} per query); splitting "
                    "the window"
                )
                checkpoint()
                return
            capped = True
            reason = f"{page.total:,} results in one minute; only the first {cap:,} are reachable"
            table.update(sid, {"note": reason})
            errors.append({"query": name, "window": f"{wfrom}..{wto}", "reason": reason})
            counts["flagged"] += 1
        if page.suspect_empty:
            reason = (
                "no results although this query normally has some"
                if page.total == 0
                else (
                    f"empty page at offset {start:,} although arXiv reports {page.total:,} results"
                )
            )
            table.update(sid, {"status": "flagged", "total": page.total, "note": reason})
            errors.append(
                {
                    "query": name,
                    "window": f"{wfrom}..{wto}",
                    "reason": f"{reason} (after {page.attempts} attempts)",
                }
            )
            counts["flagged"] += 1
            reporter.note(f"arXiv: FLAGGED {label}: {reason}")
            checkpoint()
            return
        if total is None:
            reporter.start(f"arXiv {label}", total=min(page.total, cap))
        total = page.total
        # arXiv pages by offset: the page at ``start`` must bring this many papers not seen yet
        expected = max(min(client.page_size, min(total, cap) - start), 0)
        papers = _new_papers(page.results, seen, harvested_through)
        papers += _rerequest(
            client,
            full_query,
            start,
            expected,
            papers,
            seen,
            label,
            counts,
            reporter,
            harvested_through,
        )
        if len(papers) < expected:
            gaps.append({"offset": start, "missing": expected - len(papers)})
        if page.results:
            pages += 1
            counts["pages"] += 1
        if papers:
            for key, value in upsert_papers(db, papers).items():
                counts[key] += value
            _remember_ids(db, sid, papers)
            counts["records"] += len(papers)
            reporter.advance(len(papers))
        start += expected
        done = expected == 0 or start >= min(total, cap)
        if done and not seen:
            counts["empty"] += 1
        status = "pending"
        if done:
            status = "capped" if capped else "done"
            missing = min(total, cap) - len(seen)
            if missing > 0:
                status = "flagged"
                _flag_incomplete(
                    table,
                    sid,
                    name,
                    wfrom,
                    wto,
                    total,
                    cap,
                    seen,
                    gaps,
                    client,
                    counts,
                    errors,
                    reporter,
                    label,
                )
        table.update(
            sid,
            {
                "next_start": start,
                "total": total,
                "status": status,
                "records": len(seen),
                "pages": pages,
                "gaps": dumps(gaps) if gaps else None,
            },
        )
        if done:
            db.execute("delete from harvest_slice_ids where slice_id = ?", [sid])
        checkpoint()
        if done:
            return


def _slice_ids(db, slice_id: int) -> set[str]:
    """The papers this slice has received so far (committed page by page, so a resume knows)."""
    return {
        row[0]
        for row in db.execute(
            "select paper_id from harvest_slice_ids where slice_id = ?", [slice_id]
        )
    }


def _remember_ids(db, slice_id: int, papers: list[dict]) -> None:
    with db.conn:
        db["harvest_slice_ids"].insert_all(
            ({"slice_id": slice_id, "paper_id": p["id"]} for p in papers), ignore=True
        )


def _new_papers(results, seen: set[str], harvested_through: set[str]) -> list[dict]:
    """The page's papers that this slice has not received yet; ``seen`` grows with them.

    An entry that does not fit the paper schema is left out, so its window ends up
    short of arXiv's total and is flagged rather than silently trusted."""
    papers = []
    for result in results:
        try:
            paper = paper_from_result(result, harvested_through)
        except RecordError:
            continue
        if paper["id"] not in seen:
            seen.add(paper["id"])
            papers.append(paper)
    return papers


def _rerequest(
    client, full_query, start, expected, got, seen, label, counts, reporter, harvested_through
) -> list[dict]:
    """Ask again for a page that came back stale (papers already received) or short, up to the
    client's retry budget; returns the papers the new answers added. arXiv does this under
    load, and trusting such a page would leave a hole that no later run looks at again."""
    added: list[dict] = []
    attempt = 0
    while len(got) + len(added) < expected and attempt < client.retries:
        attempt += 1
        have = len(got) + len(added)
        wait = min(client.backoff_seconds * 2 ** (attempt - 1), client.max_backoff_seconds)
        reporter.note(
            f"arXiv: {label}: page at offset {start:,} brought {have} of {expected} new records "
            f"(stale or short); re-requesting in {wait:g} s "
            f"(attempt {attempt + 1}/{client.retries + 1})"
        )
        counts["rerequests"] += 1
        sleep(wait)
        page = client.fetch_page(full_query, start=start)
        added += _new_papers(page.results, seen, harvested_through)
    return added


def _flag_incomplete(
    table, sid, name, wfrom, wto, total, cap, seen, gaps, client, counts, errors, reporter, label
) -> None:
    """Flag a window that holds fewer distinct papers than arXiv said it has: the watermark
    stays before it, so the next run asks for it again."""
    target = min(total, cap)
    missing = target - len(seen)
    where = (
        "; pages at offset "
        + ", ".join(f"{g['offset']:,}" for g in gaps)
        + f" stayed stale or short after {client.retries} re-requests"
        if gaps
        else ""
    )
    reason = f"incomplete: {len(seen):,} of {target:,} records received{where}"
    table.update(sid, {"note": reason})
    errors.append({"query": name, "window": f"{wfrom}..{wto}", "reason": reason})
    counts["flagged"] += 1
    counts["missing"] += missing
    reporter.note(f"arXiv: FLAGGED {label}: {reason}")


def _advance_watermarks(db, run_id: int, queries: dict) -> None:
    """Move each query's watermark to the end of this run's window, when the window is complete
    (no flagged slice) and joins up with the previous watermark (a back-fill of an old range
    must not jump it forward over a gap, nor move it back)."""
    for name, query in queries.items():
        rows = list(
            db.query("select * from harvest_slices where run_id = ? and query = ?", [run_id, query])
        )
        if not rows or any(r["status"] in ("pending", "flagged", "capped") for r in rows):
            continue
        window_from = min(r["window_from"] for r in rows)
        window_to = max(r["window_to"] for r in rows)
        current = _watermark(db, query)
        if current is None or (window_from <= current < window_to):
            db["harvest_watermarks"].upsert(
                {
                    "query": query,
                    "query_name": name,
                    "until": window_to,
                    "run_id": run_id,
                    "updated": now_iso(),
                },
                pk="query",
            )
