"""``evla init`` and ``evla status``."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ..ingest.seeds import init_db
from ..pipeline.status import database_status
from .common import pass_app, stdout_console


@click.command()
@click.option(
    "--seeds",
    "seeds_path",
    type=click.Path(file_okay=False, exists=True),
    help="Seeds directory (taxonomy.toml, seed_papers.jsonl). Default: $EVLA_SEEDS, else the "
    "bundled seeds/.",
)
@pass_app
def init(app, seeds_path):
    """Create or migrate the database and load the survey's taxonomy and papers.

    Safe to run again: nothing changes unless the seed files changed.

    \b
    Example:
      evla init
      evla --db /tmp/other.db init --seeds my-survey/seeds
    """
    from pathlib import Path

    counts = init_db(app.db(), Path(seeds_path) if seeds_path else app.settings.seeds)
    click.echo(
        f"{app.resolved_db_path}: {counts['taxonomy_nodes']} taxonomy nodes "
        f"({counts['leaves']} leaves), "
        f"{counts['seed_papers']} survey papers ({counts['papers_inserted']} new, "
        f"{counts['survey_rows_changed']} survey rows changed)"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_app
def status(app, as_json):
    """Show table counts, the latest runs and what is pending."""
    info = database_status(app.db())
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    console = stdout_console()
    counts = Table(title=f"evla-miner: {app.resolved_db_path}", show_header=True)
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name, value in info["counts"].items():
        counts.add_row(name, f"{value:,}")
    for name, value in info["pending"].items():
        counts.add_row(f"[yellow]pending: {name}", f"{value:,}")
    console.print(counts)
    runs = Table(title="Latest runs")
    for column in ("id", "kind", "started", "status", "counts", "errors"):
        runs.add_column(column)
    for run in info["runs"]:
        summary = ", ".join(
            f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
            for k, v in run["counts"].items()
            if v
        )
        runs.add_row(
            str(run["id"]),
            run["kind"],
            run["started"] or "",
            run["status"],
            summary,
            str(run["errors"]),
        )
    console.print(runs)


COMMANDS = [init, status]
