"""``evla harvest``: import arXiv records into the db."""

from __future__ import annotations

import click

from ..harvest import import_snapshot
from ..progress import RichReporter
from .common import as_date, pass_app, since_until_options

SHOWN_BAD_LINES = 20


def print_harvest_result(result) -> None:
    counts = result.counts
    click.echo(
        f"run {result.run_id}: {counts['lines']:,} records read, {counts['inserted']:,} new, "
        f"{counts['updated']:,} updated, {counts['unchanged']:,} unchanged, "
        f"{counts['outside_window']:,} outside the date window, {counts['bad']:,} bad"
    )
    for error in result.errors[:SHOWN_BAD_LINES]:
        click.echo(f"  line {error['line']}: {error['reason']}", err=True)
    if counts["bad"] > SHOWN_BAD_LINES:
        click.echo(f"  ... and {counts['bad'] - SHOWN_BAD_LINES} more bad lines (see `evla status --json`)", err=True)


@click.command()
@click.option(
    "--snapshot",
    type=click.Path(dir_okay=False),
    help="Import this arXiv metadata snapshot (JSON lines, optionally .gz) instead of calling the arXiv API.",
)
@since_until_options()
@pass_app
def harvest(app, snapshot, since, until):
    """Bring new arXiv papers into the database.

    With --snapshot, import a file in the arXiv bulk metadata format (one JSON
    object per line: id, title, abstract, authors, categories, versions, ...).
    Records are upserted by versionless id: a newer version updates the paper
    and keeps its version history; re-importing changes nothing. Bad lines are
    reported with their line number and skipped.

    \b
    Examples:
      evla harvest --snapshot arxiv-metadata-oai-snapshot.json --since 2025-10-01
      evla harvest --snapshot stream.jsonl.gz
    """
    if not snapshot:
        raise click.UsageError("live harvesting is not available yet; pass --snapshot FILE")
    result = import_snapshot(app.db(), snapshot, as_date(since), as_date(until), reporter=RichReporter())
    print_harvest_result(result)


COMMANDS = [harvest]
