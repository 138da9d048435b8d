"""``evla weekly``: the cron entry point."""

from __future__ import annotations

import click

from ..config import DEMO_DB_PATH
from ..progress import RichReporter
from ..weekly import run_weekly
from .common import as_date, pass_app, since_until_options
from .harvest import print_harvest_result


@click.command()
@click.option("--snapshot", type=click.Path(dir_okay=False, exists=True), help="Harvest from this snapshot file instead of the arXiv API.")
@since_until_options()
@click.option("--demo", is_flag=True, help="Run offline on the bundled sample of real arXiv records (the stream's last 4 weeks) into db/demo.db.")
@pass_app
def weekly(app, snapshot, since, until, demo):
    """Run the whole weekly pipeline: harvest, classify, rank, propose.

    Exit code 0 when all went well (including "nothing new"), non-zero on failure.

    \b
    Examples:
      evla weekly --demo
      evla weekly --snapshot new-records.jsonl
    """
    db = app.db(default_path=DEMO_DB_PATH if demo else None)
    result = run_weekly(db, snapshot, as_date(since), as_date(until), demo=demo, reporter=RichReporter())
    if result.harvest:
        print_harvest_result(result.harvest)
    click.echo(f"weekly run {result.run_id}: ok")


COMMANDS = [weekly]
