"""``evla export bibtex|markdown``: the survey's bibliography and README tables."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.progress import RichReporter
from ..review.export import STATUSES, BibtexExport, export_bibtex, export_markdown
from .common import pass_app


def _write(text: str, output: str | None) -> None:
    if output and output != "-":
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def report_bibtex(result: BibtexExport, output: str | None, what: str) -> None:
    """The export's summary on stderr: where it went, and every entry with a hole in it."""
    if not result.count:
        click.echo(f"nothing to export: no {what}", err=True)
    elif output and output != "-":
        verbatim = (
            f", {result.verbatim} kept verbatim from the survey .bib" if result.verbatim else ""
        )
        click.echo(
            f"{output}: {result.count} entries ({result.new_keys} new keys{verbatim}), "
            "parsed back with bibtexparser: ok",
            err=True,
        )
    if result.incomplete:
        click.echo(
            f"{len(result.incomplete)} of {result.count} entries are incomplete "
            "(written; add the missing fields in the survey .bib or the paper record):",
            err=True,
        )
        for key, missing in result.incomplete:
            click.echo(f"  {key}: no {', no '.join(missing)}", err=True)


STATUS_WHAT = {
    "accepted": "papers accepted by reviewers",
    "survey": "papers in the survey",
    "all": "papers in the database",
}


@click.group()
def export():
    """Export BibTeX or the survey's Markdown tables."""


@export.command()
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default="survey",
    show_default=True,
    help="accepted: papers reviewers accepted; survey: every survey paper (seeds + accepted); all: "
    "every paper in the db.",
)
@click.option(
    "--category",
    metavar="NODE",
    help="Only papers labelled with this taxonomy node or one below it.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout."
)
@pass_app
def bibtex(app, status, category, output):
    """BibTeX entries (@misc for arXiv preprints, @article/@inproceedings with
    booktitle/journal when a venue is known), keys in Better BibTeX style (or the
    survey .bib's own keys), stable across exports. Entries missing a required field
    are listed on stderr.

    \b
    Examples:
      evla export bibtex -o survey.bib
      evla export bibtex --status accepted --category model.compression
    """
    result = export_bibtex(app.db(), status, category, reporter=RichReporter())
    _write(result.text, output)
    what = STATUS_WHAT[status] + (f" under {category}" if category else "")
    report_bibtex(result, output, what)


@export.command()
@click.option("--category", metavar="NODE", help="Only this taxonomy node's part of the tables.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout."
)
@pass_app
def markdown(app, category, output):
    """The survey's README tables: | Year | Venue | Paper | Website | Code |, one
    per leaf under its pillar/category headings, sorted by year then title.

    \b
    Example:
      evla export markdown --category model.compression.quantization
    """
    text = export_markdown(app.db(), category)
    _write(text, output)
    if output and output != "-":
        rows = sum(
            line.startswith("| ") and not line.startswith("| Year ") for line in text.splitlines()
        )
        click.echo(f"{output}: {rows} table rows", err=True)


COMMANDS = [export]
