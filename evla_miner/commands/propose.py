"""``evla propose``: what the survey should consider next, best first."""

from __future__ import annotations

import json
import shutil
import sys

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.safe_output import write_csv
from ..review.propose import NO_GRAPH_REASON, list_proposals
from ..scoring.graph import has_graph
from .common import as_date, echo_jsonl, pass_app, since_until_options

TABLE_WIDTH = 100
JSONL_FIELDS = ("id", "title", "score", "relevance", "influence", "categories", "reasons")
CSV_FIELDS = (
    "id",
    "title",
    "score",
    "relevance",
    "influence",
    "kind",
    "leaf",
    "leaf_score",
    "published",
    "link",
    "categories",
    "reasons",
)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_table(proposals: list[dict]) -> None:
    """A table that fits 100 columns: numbers, suggested leaf, title with its top reasons, link."""
    width = min(shutil.get_terminal_size((TABLE_WIDTH, 24)).columns, TABLE_WIDTH)
    console = Console(width=width, soft_wrap=False, highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("rel", justify="right", no_wrap=True)
    table.add_column("infl", justify="right", no_wrap=True)
    table.add_column("paper", ratio=1, overflow="fold")
    table.add_column("link", no_wrap=True, overflow="fold")
    for number, item in enumerate(proposals, 1):
        cell = Text(item["title"], style="bold")
        leaf = item["leaf_name"] or "no category yet"
        cell.append(
            f"\n{item['kind']} · {leaf}"
            + (f" ({item['leaf_score']:.2f})" if item["leaf_score"] is not None else ""),
            style="cyan",
        )
        for reason in [r for r in item["reasons"] if r != NO_GRAPH_REASON][:3]:
            cell.append(f"\n- {reason}", style="dim")
        table.add_row(
            str(number),
            _fmt(item["score"]),
            _fmt(item["relevance"]),
            _fmt(item["influence"]),
            cell,
            item["link"] or "",
        )
    console.print(table)


@click.command()
@since_until_options()
@click.option(
    "--limit", type=click.IntRange(min=0), default=50, show_default=True, help="How many; 0 = all."
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["table", "jsonl", "csv"]),
    default="table",
    show_default=True,
)
@pass_app
def propose(app, since, until, limit, format_):
    """List unreviewed papers the survey lacks, best first, with reasons.

    New candidates are ranked by classifier relevance, citation influence and
    recency; older papers and cited works outside the db that survey papers or
    new candidates cite are proposed as "missing from the survey". Each comes
    with a suggested taxonomy leaf and the reasons behind its rank. Without a
    citation graph (`evla graph`) the ranking is relevance only.

    \b
    Examples:
      evla propose --since 2025-10-01 --limit 20
      evla propose --limit 0 --format jsonl > proposals.jsonl
    """
    db = app.db()
    proposals = list_proposals(db, as_date(since), as_date(until), limit)
    if not has_graph(db):
        click.echo(f"note: {NO_GRAPH_REASON}", err=True)
    print_proposals(proposals, format_)


def print_proposals(proposals: list[dict], format_: str = "table") -> None:
    """Proposals on stdout as a table, JSON lines or CSV (shared with `evla weekly`)."""
    if format_ == "jsonl":
        echo_jsonl({**{k: p[k] for k in JSONL_FIELDS}, **p} for p in proposals)
    elif format_ == "csv":
        write_csv(
            sys.stdout,
            CSV_FIELDS,
            (
                {**p, "categories": json.dumps(p["categories"]), "reasons": "; ".join(p["reasons"])}
                for p in proposals
            ),
        )
    else:
        if not proposals:
            click.echo(
                "nothing to propose: every paper is reviewed or in the survey (or none match the "
                "dates)"
            )
            return
        print_table(proposals)


COMMANDS = [propose]
