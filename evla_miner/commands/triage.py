"""``evla triage``: walk the proposal queue in the terminal, one key per decision."""

from __future__ import annotations

import click

from ..review.propose import list_proposals
from ..review.triage import TriageIO, run_triage
from .common import as_date, pass_app, since_until_options


@click.command()
@since_until_options("first version's date")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Triage at most this many proposals (best first)."
)
@click.option("--reviewer", help="Who decides. Default: $EVLA_REVIEWER, else your login name.")
@pass_app
def triage(app, since, until, limit, reviewer):
    """Triage proposals one paper at a time: title, authors, date, link,
    abstract, suggested leaf and why it was proposed.

    \b
    Keys: a accept   r reject   c change leaf   s skip   o open in browser   q quit
    Decisions land immediately (same log as `evla review`); a later session
    resumes with the first paper you have not seen, skipped ones come last.
    """
    db = app.db()
    proposals = list_proposals(db, as_date(since), as_date(until), limit)
    result = run_triage(db, proposals, reviewer=reviewer, io=TriageIO())
    click.echo(
        f"{len(result.accepted)} accepted, {len(result.rejected)} rejected, "
        f"{len(result.skipped)} skipped; {result.remaining} left in the queue"
    )


COMMANDS = [triage]
