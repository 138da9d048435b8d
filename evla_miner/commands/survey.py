"""``evla survey import|export|venues``: the survey's own .bib and its papers' venues."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from ..core.progress import RichReporter
from ..core.venues import record_offline_venues
from ..ingest.survey_bib import ImportResult, import_survey_bib
from ..review.export import STATUSES, export_bibtex, select_papers
from ..scoring.citations import SERVICES, client_from_settings, has_api_key
from ..scoring.venues import fetch_venues
from .common import echo_jsonl, pass_app
from .export import _write, report_bibtex

METHOD_NAMES = {"arxiv": "by arXiv id", "doi": "by DOI", "title": "by title"}


@click.group()
def survey():
    """The survey's own bibliography: import its .bib, export it back, record venues."""


def _summary(result: ImportResult, dry_run: bool) -> str:
    c = result.counts
    matched = ", ".join(f"{c[m]} {name}" for m, name in METHOD_NAMES.items())
    head = f"{result.file}: {c['entries']} entries: {matched}, {c['unmatched']} unmatched"
    if dry_run:
        return head + " (dry run: nothing stored)"
    return (
        f"{head}; {c['survey_added']} added to the survey, {c['keys_pinned']} keys pinned, "
        f"{c['venues_recorded']} venues recorded, {c['entries_changed']} entries changed"
    )


def _rows(result: ImportResult) -> list[str]:
    """One aligned line per entry: key, method, score, paper, and its title or why unmatched."""
    width = max([len(m.key) for m in result.matches] + [3])
    lines = [f"{'key':<{width}}  {'method':<6} {'score':>5}  {'paper':<14} title / why unmatched"]
    for m in result.matches:
        score = f"{m.score:.0f}" if m.score else "-"
        paper = m.matched_id or "-"
        paper = paper if len(paper) <= 14 else paper[:13] + "…"
        text = m.title if m.matched_id else f"UNMATCHED: {m.reason}"
        lines.append(f"{m.key:<{width}}  {m.method or '-':<6} {score:>5}  {paper:<14} {text}")
    return lines


@survey.command("import")
@click.argument("bib_file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Match and report; store nothing.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help='table: a row per entry; jsonl: {"key", "title", "matched_id", "method", "score"} lines.',
)
@click.option(
    "--labels-from",
    metavar="FIELD",
    help="Entry field holding taxonomy ids (e.g. keywords); `% evla: ID, ID` comments count too.",
)
@pass_app
def import_(app, bib_file, dry_run, fmt, labels_from):
    """Match every entry of the survey's .bib to a paper and add the matched ones
    to the survey (source bib:<file name>), keeping the entries' keys for export.

    Matching, most certain first: an arXiv id in any field, the DOI, then title
    with authors and year. Unmatched entries are listed and kept; a later harvest
    that brings their paper matches them. Broken entries are reported and skipped.
    Re-importing the same file changes nothing.

    \b
    Examples:
      evla survey import survey.bib --dry-run
      evla survey import survey.bib --labels-from keywords --format jsonl
    """
    result = import_survey_bib(app.db(), Path(bib_file), labels_from, dry_run=dry_run)
    if fmt == "jsonl":
        echo_jsonl(m.as_json() for m in result.matches)
    else:
        click.echo("\n".join(_rows(result)))
    click.echo(_summary(result, dry_run), err=fmt == "jsonl")
    unmatched = [m for m in result.matches if not m.matched_id]
    for m in unmatched if fmt == "jsonl" else []:
        click.echo(f"  unmatched {m.key}: {m.reason}", err=True)
    for note in result.notes:
        click.echo(f"  note: {note}", err=True)
    if result.errors:
        for error in result.errors:
            click.echo(
                f"  line {error['line']} ({error['key'] or 'no key'}): {error['reason']}", err=True
            )
        raise click.ClickException(
            f"{len(result.errors)} broken entries skipped; "
            f"the other {len(result.matches)} were read"
        )


@survey.command("export")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout."
)
@pass_app
def export_(app, output):
    """The survey's bibliography, ready to replace the authors' .bib: every survey
    paper under the key the imported .bib gave it (Better BibTeX style when it has
    none), plus the .bib's unmatched entries as they were: no \\cite breaks.

    \b
    Example:
      evla survey export -o survey.bib
    """
    result = export_bibtex(app.db(), "survey", reporter=RichReporter(), with_bib_entries=True)
    _write(result.text, output)
    report_bibtex(result, output, "papers in the survey")


@survey.command()
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default="survey",
    show_default=True,
    help="Which papers: as for `evla export bibtex`.",
)
@click.option(
    "--online/--offline",
    default=None,
    help="Ask the citation service too (default: when its API key is set).",
)
@pass_app
def venues(app, status, online):
    """Record where papers were published: from arXiv's journal-ref and comments
    ("Accepted to CoRL 2025"), and, online, from Semantic Scholar or OpenAlex
    ([citations] service), kept only when their record agrees with ours on title
    and authors. Exports then write @inproceedings/@article and the Venue column.

    \b
    Example:
      S2_API_KEY=... evla survey venues --status all
    """
    db = app.db()
    papers = select_papers(db, status)
    changed = record_offline_venues(db, [p["id"] for p in papers])
    click.echo(f"arXiv journal-ref/comments: {changed} venues recorded or changed")
    settings = app.settings.citations
    if online is None:
        online = settings.service in SERVICES and has_api_key(settings.service)
    if not online:
        click.echo(f"{settings.service}: offline (no API key set, or --offline)")
        return
    counts = fetch_venues(db, client_from_settings(settings, db), papers, RichReporter())
    shown = Counter({k: v for k, v in counts.items() if k != "rejected"})
    click.echo(f"{settings.service}: " + ", ".join(f"{v} {k}" for k, v in shown.items()))
    for paper_id, reason in counts["rejected"]:
        click.echo(f"  {paper_id}: not recorded, {reason}", err=True)


COMMANDS = [survey]
