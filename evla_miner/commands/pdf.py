"""``evla pdf`` (download and extract candidate papers' PDFs) and ``evla refs`` (one PDF's
references)."""

from __future__ import annotations

import click

from ..core.progress import RichReporter
from ..core.settings import PdfSettings
from ..ingest.pdfs import client_from_settings, process_pdfs
from ..ingest.references import references_from_pdf
from .common import echo_jsonl, pass_app

DEFAULTS = PdfSettings()


@click.command()
@click.option(
    "--min-relevance",
    type=float,
    help="Only papers whose classifier relevance is at least this (default: all papers). [pdf] "
    "min_relevance",
)
@click.option(
    "--no-survey",
    is_flag=True,
    help="With --min-relevance, leave out the survey's own papers (included by default: their "
    "references feed the citation graph).",
)
@click.option(
    "--limit", type=click.IntRange(min=0), help="Process at most this many papers this run."
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="Extraction processes (default: number of cores; 0 = in this process). [pdf] workers",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    help=f"Seconds between downloads (default {DEFAULTS.interval:g}, arXiv's rule). [pdf] interval",
)
@click.option(
    "--max-mb",
    type=click.FloatRange(min=0.001),
    help=f"Size cap per PDF in MB (default {DEFAULTS.max_mb:g}). [pdf] max_mb",
)
@click.option(
    "--max-pages",
    type=click.IntRange(min=1),
    help=f"Refuse PDFs with more pages (default {DEFAULTS.max_pages}). [pdf] max_pages",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0.1),
    help=f"Seconds of extraction per PDF (default {DEFAULTS.time_limit:g}). [pdf] time_limit",
)
@click.option(
    "--base-url", help=f"Where PDFs are fetched from (default {DEFAULTS.base_url}). [pdf] base_url"
)
@pass_app
def pdf(
    app, min_relevance, no_survey, limit, workers, interval, max_mb, max_pages, time_limit, base_url
):
    """Download and read the PDFs of candidate papers.

    For each selected paper whose latest version is not yet read: download
    db/pdfs/<id>v<N>.pdf (one request at a time, 3 s apart, %PDF and size
    checks), extract the text in reading order, split it into sections, and
    store its reference list matched to papers in the db (by arXiv id, DOI or
    title). Failures are recorded with their reason and retried next run.

    \b
    Examples:
      evla pdf --limit 20
      evla pdf --min-relevance 0.5
    """
    settings = app.settings.with_flags(
        "pdf",
        min_relevance=min_relevance,
        workers=workers,
        interval=interval,
        max_mb=max_mb,
        max_pages=max_pages,
        time_limit=time_limit,
        base_url=base_url,
    ).pdf
    counts = process_pdfs(
        app.db(),
        client_from_settings(settings),
        selection="all" if settings.min_relevance is None else settings.min_relevance,
        limit=limit,
        reporter=RichReporter(),
        include_survey=not no_survey,
        settings=settings,
    )
    click.echo(
        f"run {counts['run_id']}: {counts['selected']} papers selected, "
        f"{counts['downloaded']} downloaded ({counts['download_failed']} failed), "
        f"{counts['extracted']} read ({counts['extract_failed']} failed), "
        f"{counts['references']} references ({counts['matched']} matched to papers in the db)"
    )


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True
)
@click.option(
    "--max-pages", type=click.IntRange(min=1), default=DEFAULTS.max_pages, show_default=True
)
def refs(file, fmt, max_pages):
    """Print the references found in one PDF (no database needed).

    text: one line per reference with its arXiv id / DOI, year and title;
    jsonl: one JSON object per reference (position, raw, arxiv_id, doi, title,
    year, authors).

    \b
    Examples:
      evla refs paper.pdf
      evla refs paper.pdf --format jsonl | jq .arxiv_id
    """
    entries = references_from_pdf(file, max_pages=max_pages)
    if fmt == "jsonl":
        echo_jsonl(entries)
        return
    for ref in entries:
        ident = (
            f"arXiv:{ref['arxiv_id']}"
            if ref["arxiv_id"]
            else (f"doi:{ref['doi']}" if ref["doi"] else "-")
        )
        label = ref["title"] or ref["raw"]
        if len(label) > 90:
            label = label[:87] + "..."
        click.echo(f"{ref['position']:>3}  {ident:<22} {ref['year'] or '':<4}  {label}")
    with_id = sum(1 for r in entries if r["arxiv_id"] or r["doi"])
    click.echo(f"{len(entries)} references, {with_id} with an arXiv id or DOI", err=True)


COMMANDS = [pdf, refs]
