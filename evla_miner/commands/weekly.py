"""``evla weekly``: the cron entry point."""

from __future__ import annotations

import click

from ..core.progress import RichReporter
from ..core.settings import DEMO_DB_PATH, Settings
from ..pipeline.weekly import DEFAULT_LIMIT, run_weekly
from .common import as_date, pass_app, since_until_options
from .propose import print_proposals


def _citation_client(db, settings: Settings):
    """The citation service `evla graph` would use online: only when its API key is set."""
    from ..scoring.citations import client_from_settings, has_api_key

    if not has_api_key(settings.citations.service):
        return None
    return client_from_settings(settings.citations, db=db)


def _summary(result) -> list[str]:
    stages = result.stages
    lines = []
    if "harvest" in stages:
        h = stages["harvest"]
        read = h.get("lines", h.get("records", 0))
        lines.append(
            f"harvest: {read:,} records read, {h.get('inserted', 0):,} new, "
            f"{h.get('updated', 0):,} updated"
            + (f", {h['bad']:,} bad" if h.get("bad") else "")
            + (f", {h['flagged']} window(s) FLAGGED" if h.get("flagged") else "")
        )
    if "classify" in stages:
        c = stages["classify"]
        lines.append(
            f"classify: {c.get('scored', 0):,} papers scored"
            + (" (retrained)" if c.get("retrained") else "")
        )
    if "pdfs" in stages:
        d = stages["pdfs"]
        lines.append(
            f"pdfs: {d.get('downloaded', 0):,} downloaded, {d.get('extracted', 0):,} read, "
            f"{d.get('references', 0):,} references"
        )
    if "graph" in stages:
        g = stages["graph"]
        lines.append(f"graph: {g.get('nodes', 0):,} nodes, {g.get('edges', 0):,} edges")
    if "propose" in stages:
        p = stages["propose"]
        lines.append(
            f"propose: {p['unreviewed']:,} unreviewed candidates ({p['relevant']:,} relevant), top "
            f"{p['listed']} listed"
        )
    if result.digest:
        lines.append(f"digest: {result.digest['markdown']} and {result.digest['html']}")
    return lines


@click.command()
@click.option(
    "--snapshot",
    type=click.Path(dir_okay=False, exists=True),
    help="Harvest from this snapshot file instead of the arXiv API.",
)
@since_until_options("first version's date")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="How many proposals to print and put in the digest; 0 = all.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["table", "jsonl", "csv"]),
    default="table",
    show_default=True,
    help="How to print the proposals on stdout (stage summaries go to stderr).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="No network at all: no PDF downloads, no citation APIs, no arXiv API (needs --snapshot).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Run offline on the bundled sample of real arXiv records (the stream's last 4 weeks) into "
    "db/demo.db.",
)
@pass_app
def weekly(app, snapshot, since, until, limit, format_, offline, demo):
    """Run the whole weekly pipeline: harvest, classify, PDFs, graph, propose, digest.

    Harvests from --snapshot, or live from the arXiv API; then reads the PDFs of
    relevant papers (with the same [pdf] settings as `evla pdf`) and asks the
    citation API when its key is set. With --offline nothing goes over the network
    (give --snapshot); with --demo, fully offline on bundled data.
    Writes a digest (Markdown + HTML with a chart of proposals per pillar)
    under <db dir>/reports/ and prints the proposals.
    Only one run at a time: a second run while one is going exits with
    code 1 and says who holds the lock. Exit code 0 when all went well
    (including "nothing new"), non-zero on failure.

    \b
    Examples:
      evla weekly --demo
      evla weekly --snapshot new-records.jsonl --format jsonl
      evla weekly --snapshot new-records.jsonl --offline
      evla weekly                     # cron: live arXiv harvest since the last run
    """
    if offline and not (snapshot or demo):
        raise click.UsageError("--offline needs --snapshot FILE (the arXiv API is online)")
    db = app.db(default_path=DEMO_DB_PATH if demo else None)
    settings = app.settings
    citation_client = None if demo or offline else _citation_client(db, settings)
    result = run_weekly(
        db,
        snapshot,
        as_date(since),
        as_date(until),
        demo=demo,
        reporter=RichReporter(),
        settings=settings,
        limit=limit or None,
        online=False if offline else None,
        citation_client=citation_client,
    )
    for line in _summary(result):
        click.echo(line, err=True)
    if offline:
        click.echo("offline: no PDF downloads, no citation APIs, no arXiv API", err=True)
    click.echo(f"weekly run {result.run_id}: ok", err=True)
    print_proposals(result.proposals, format_)


COMMANDS = [weekly]
