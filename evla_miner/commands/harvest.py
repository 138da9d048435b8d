"""``evla harvest``: import arXiv records into the db."""

from __future__ import annotations

import click

from ..core.progress import RichReporter
from ..core.settings import queries_from_specs
from ..ingest.harvest import client_from_settings, harvest_arxiv
from ..ingest.snapshot import import_snapshot
from ..ingest.survey_bib import match_pending
from .common import as_date, pass_app, since_until_options

SHOWN_BAD_LINES = 20


def print_snapshot_result(result) -> None:
    """Summary of a snapshot import, with the first bad lines."""
    counts = result.counts
    click.echo(
        f"run {result.run_id}: {counts['lines']:,} records read, {counts['inserted']:,} new, "
        f"{counts['updated']:,} updated, {counts['unchanged']:,} unchanged, "
        f"{counts['outside_window']:,} outside the date window, {counts['bad']:,} bad"
        + (f", {counts['duplicates']:,} duplicate ids" if counts.get("duplicates") else "")
    )
    print_bad_lines(result.errors, counts)


def print_bad_lines(errors: list[dict], counts: dict) -> None:
    """The first bad lines of an import (on stderr), and how many more the run recorded."""
    for error in errors[:SHOWN_BAD_LINES]:
        click.echo(f"  line {error['line']}: {error['reason']}", err=True)
    reported = counts["bad"] + counts.get("duplicates", 0)
    if reported > SHOWN_BAD_LINES:
        click.echo(
            f"  ... and {reported - SHOWN_BAD_LINES} more bad lines (see `evla status --json`)",
            err=True,
        )


def match_pending_bib(db) -> None:
    """Entries of the survey's .bib whose paper this harvest brought: matched now."""
    for match in match_pending(db):
        click.echo(
            f"survey .bib: {match.key} matched {match.matched_id} ({match.method}), "
            "added to the survey"
        )


def print_arxiv_result(result) -> None:
    """One summary line for a live harvest, then one line per flagged window (on stderr)."""
    c = result.counts
    split = f" ({c['split']} split)" if c["split"] else ""
    click.echo(
        f"run {result.run_id}: arXiv API, {c['queries']} queries, {c['windows']} windows"
        f"{split}, {c['pages']:,} pages, "
        f"{c['records']:,} records: {c['inserted']:,} new, {c['updated']:,} updated, "
        f"{c['unchanged']:,} unchanged; "
        f"{c['requests']:,} requests, {c['retries']:,} retries, "
        + (f"{c['rerequests']:,} stale/short pages re-requested, " if c.get("rerequests") else "")
        + f"{c['empty']} empty windows, {c['flagged']} flagged"
    )
    for error in result.errors:
        click.echo(f"  FLAGGED {error['query']} {error['window']}: {error['reason']}", err=True)


@click.command()
@click.option(
    "--snapshot",
    type=click.Path(dir_okay=False),
    help="Import this arXiv metadata snapshot (JSON lines, optionally .gz) instead of calling the "
    "arXiv API.",
)
@since_until_options("submission (first version) date")
@click.option(
    "--query",
    "queries",
    multiple=True,
    metavar="[NAME=]QUERY",
    help="arXiv search query for the live harvest (repeatable); replaces the configured queries "
    "($EVLA_ARXIV_QUERIES, [harvest.queries] in evla.toml, default: cs.RO + VLA terms in "
    "cs.CV/AI/LG/CL).",
)
@click.option(
    "--delay",
    type=float,
    help="Seconds between arXiv API requests (default 3, or [harvest] delay_seconds).",
)
@pass_app
def harvest(app, snapshot, since, until, queries, delay):
    """Bring new arXiv papers into the database.

    Without --snapshot, query the arXiv API (or $EVLA_ARXIV_API_URL): each
    configured query, restricted to a submission-date window: --since/--until,
    else from that query's watermark (the end of the last successful run) minus
    2 days, to now. One request at a time, 3 s apart; 429/5xx/timeouts/resets/
    truncated or empty pages are retried with exponential backoff. Progress is
    committed page by page: a killed run is resumed by the next one. Windows
    that return nothing although they should are FLAGGED in the summary.

    With --snapshot, import a file in the arXiv bulk metadata format (one JSON
    object per line: id, title, abstract, authors, categories, versions, ...).
    Records are upserted by versionless id: a newer version updates the paper
    and keeps its version history; re-importing changes nothing. Bad lines are
    reported with their line number and skipped.

    \b
    Examples:
      evla harvest --snapshot arxiv-metadata-oai-snapshot.json --since 2025-10-01
      evla harvest --snapshot stream.jsonl.gz
      evla harvest
      evla harvest --since 2025-10-01 --until 2025-10-07 --query 'robotics=cat:cs.RO'
    """
    if not snapshot:
        if queries and any(not q.strip() for q in queries):
            raise click.BadParameter("empty query", param_hint="--query")
        reporter = RichReporter()
        settings = app.settings.with_flags(
            "harvest", delay_seconds=delay, queries=queries_from_specs(queries) if queries else None
        ).harvest
        client = client_from_settings(settings, on_retry=reporter.note)
        result = harvest_arxiv(
            app.db(create=True),
            client,
            as_date(since),
            as_date(until),
            reporter=reporter,
            settings=settings,
        )
        print_arxiv_result(result)
        match_pending_bib(app.db())
        return
    if queries or delay is not None:
        raise click.UsageError("--query and --delay apply to the live harvest, not to --snapshot")
    result = import_snapshot(
        app.db(create=True), snapshot, as_date(since), as_date(until), reporter=RichReporter()
    )
    print_snapshot_result(result)
    match_pending_bib(app.db())


COMMANDS = [harvest]
