"""``evla graph``: build the citation graph and its influence signals."""

from __future__ import annotations

import click

from ..core.progress import RichReporter
from ..scoring.citations import client_from_settings, has_api_key
from ..scoring.graph import build_graph
from .common import pass_app


@click.command()
@click.option(
    "--online/--offline",
    default=None,
    help="Ask a citation service what each paper cites. Default: online when the service's API key "
    "is set.",
)
@click.option(
    "--service",
    type=click.Choice(["s2", "openalex"]),
    default=None,
    help="Citation service: Semantic Scholar (s2, default) or OpenAlex. Config: [citations] "
    "service.",
)
@click.option(
    "--fetch-limit",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    help="Ask the service about at most this many papers (survey papers first, then recent "
    "candidates); 0 = all.",
)
@pass_app
def graph(app, online, service, fetch_limit):
    """Build the citation graph and compute influence signals.

    Edges come from the references extracted from PDFs (`evla refs`) and,
    online, from Semantic Scholar or OpenAlex (keys: $S2_API_KEY,
    $OPENALEX_API_KEY; answers are cached in the db with their fetch time).
    Cited works outside the db become stub nodes. Per paper it stores
    citations from the corpus, from survey papers and from recent candidates,
    PageRank, PageRank seeded by the survey, and co-citation with survey papers.

    \b
    Examples:
      evla graph                  offline unless an API key is set
      evla graph --online --service s2 --fetch-limit 200
    """
    settings = app.settings.with_flags("citations", service=service).citations
    if online is None:
        online = has_api_key(settings.service)
    db = app.db()
    client = client_from_settings(settings, db=db) if online else None
    counts = build_graph(
        db, citation_client=client, reporter=RichReporter(), fetch_limit=fetch_limit or None
    )
    click.echo(
        f"run {counts['run_id']}: {counts['nodes']:,} nodes ({counts['corpus_nodes']:,} papers, "
        f"{counts['stub_nodes']:,} cited works outside the db), {counts['edges']:,} edges; "
        f"{counts['references']:,} references read ({counts['references_unresolved']:,} "
        "unidentifiable)"
        + (
            f", {counts['papers_fetched']:,} papers asked online ({counts['edges_from_service']:,} "
            "edges)"
            if online
            else ""
        )
    )
    click.echo(
        f"{counts['survey_papers_citing']:,} survey papers cite something; "
        f"{counts['cited_by_survey']:,} works are cited by survey papers"
    )
    if not counts["edges"]:
        click.echo(
            "no edges: run `evla pdf`/`evla refs` first, or go --online; `evla propose` ranks by "
            "relevance only",
            err=True,
        )


COMMANDS = [graph]
