"""``evla review``: record a reviewer's decisions (one paper, an undo, or a CSV file)."""

from __future__ import annotations

import click

from ..core.decisions import record_decision, undo_decision
from ..core.errors import BadInput
from ..review.csv_import import import_decisions_csv
from .common import pass_app

SURVEY_EFFECT = {
    "added": "added to the survey",
    "updated": "survey labels updated",
    "removed": "removed from the survey",
    "restored": "back to its seed labels in the survey",
    "unchanged": "survey unchanged",
}


@click.command()
@click.argument("paper_id", required=False)
@click.option("--accept", "decision", flag_value="accept", help="Accept the paper into the survey.")
@click.option("--reject", "decision", flag_value="reject", help="Reject the paper.")
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="NODE",
    help="Taxonomy node for an accepted paper (repeatable). Default: the classifier's best leaf.",
)
@click.option("--note", help="A free-text note kept with the decision.")
@click.option("--reviewer", help="Who decides. Default: $EVLA_REVIEWER, else your login name.")
@click.option(
    "--undo", "undo_id", metavar="ID", help="Cancel the decision currently in force for paper ID."
)
@click.option(
    "--import",
    "import_file",
    type=click.Path(dir_okay=False),
    help="Record the decisions of a CSV file with header id,decision,categories,note (categories "
    "split by ';').",
)
@pass_app
def review(app, paper_id, decision, categories, note, reviewer, undo_id, import_file):
    """Accept or reject a paper, undo a decision, or import decisions from CSV.

    Every decision is appended to the log with the reviewer and the time (the
    latest one in force wins); accepted papers join the survey with their
    taxonomy leaves, and the classifier learns from accepts and rejects.

    \b
    Examples:
      evla review 2509.12345 --accept --category model.compression.quantization
      evla review 2509.12345 --reject --note "not a VLA"
      evla review --undo 2509.12345
      evla review --import decisions.csv
    """
    modes = sum(bool(x) for x in (decision, undo_id, import_file))
    if modes != 1:
        raise click.UsageError(
            "give exactly one of: ID --accept, ID --reject, --undo ID, --import FILE"
        )
    db = app.db()
    if import_file:
        if paper_id:
            raise click.UsageError("--import takes no paper id")
        result = import_decisions_csv(db, import_file, reviewer=reviewer)
        errors, n_ok = result.errors, result.recorded
        click.echo(
            f"{import_file}: {n_ok} decision{'s' if n_ok != 1 else ''} recorded, "
            f"{len(errors)} bad row{'s' if len(errors) != 1 else ''}"
            + (f", {result.unchanged} unchanged (already in force)" if result.unchanged else "")
        )
        for error in errors:
            click.echo(f"  line {error['line']}: {error['reason']}", err=True)
        if errors:
            raise SystemExit(1)
        return
    if undo_id:
        if paper_id:
            raise click.UsageError("--undo takes the paper id as its value: evla review --undo ID")
        result = undo_decision(db, undo_id, reviewer=reviewer)
        now = result["now"] or "no decision"
        click.echo(
            f"{result['paper_id']}: {result['undone']} undone, now {now}; "
            f"{SURVEY_EFFECT[result['survey']]}"
        )
        return
    if not paper_id:
        raise click.UsageError("which paper? evla review ID --accept|--reject")
    if decision == "reject" and categories:
        raise BadInput("--category goes with --accept")
    result = record_decision(db, paper_id, decision, list(categories), note=note, reviewer=reviewer)
    where = f" as {', '.join(result['categories'])}" if result["categories"] else ""
    click.echo(f"{result['paper_id']}: {decision}ed{where}; {SURVEY_EFFECT[result['survey']]}")


COMMANDS = [review]
