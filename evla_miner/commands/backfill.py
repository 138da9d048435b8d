"""``evla backfill``: import, embed and score a whole arXiv snapshot in one resumable pass."""

from __future__ import annotations

import click

from ..core.progress import RichReporter
from .common import as_date, pass_app, since_until_options
from .harvest import print_bad_lines


def print_backfill_result(result, path: str) -> None:
    c = result.counts
    if result.already_complete:
        t = result.total_counts
        click.echo(
            f"run {result.run_id}: backfill of {path} is already complete "
            f"({t.get('lines', 0):,} lines read, {t.get('scored', 0):,} papers scored); "
            "nothing to do"
        )
        return
    resumed = f" (resumed after line {result.resumed_after:,})" if result.resumed_after else ""
    rate = c["scored"] / result.seconds if result.seconds else 0.0
    click.echo(
        f"run {result.run_id}: {c['lines']:,} lines read{resumed}, {c['inserted']:,} new, "
        f"{c['updated']:,} updated, {c['unchanged']:,} unchanged, "
        f"{c['other_categories']:,} in other categories, "
        f"{c['outside_window']:,} outside the date window, {c['bad']:,} bad"
        + (f", {c['duplicates']:,} duplicate ids" if c.get("duplicates") else "")
    )
    click.echo(
        f"  {c['scored']:,} papers scored with {c['model']} ({c['embedded']:,} embedded, "
        f"{c['already_scored']:,} already scored), {c['relevant']:,} relevant (>= 0.5); "
        f"{result.seconds:.1f} s, {rate:.1f} papers/s"
    )
    print_bad_lines(result.errors, c)


@click.command()
@click.argument("snapshot", type=click.Path(dir_okay=False))
@click.option(
    "--categories",
    metavar="CAT,CAT,...",
    help="Keep records with any of these arXiv categories, primary or cross-listed "
    "(comma-separated; cs.* keeps a whole archive). Default: every record.",
)
@since_until_options("first version's date")
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where chunks are embedded and scored: this process, or a Dask cluster "
    "(pip install 'evla-miner[cluster]').",
)
@click.option(
    "--address",
    metavar="ADDR",
    help="Dask scheduler to connect to (tcp://host:8786). Default: start a local cluster.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes of the local Dask cluster. Default: one per core.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Papers per chunk: the unit of work sent to a worker and of each commit.",
)
@pass_app
def backfill(app, snapshot, categories, since, until, engine, address, workers, chunk_size):
    """Import, embed and score SNAPSHOT in one streaming pass.

    SNAPSHOT is a file in the arXiv bulk metadata format (JSON lines, plain or
    .gz), up to the full ~2.7 M-line dump: it is streamed in constant memory.
    Records that pass --categories and --since/--until are imported with the
    rules of `evla harvest --snapshot` (bad lines are reported with their line
    number and skipped) and scored as `evla classify` scores them, chunk by
    chunk. Each chunk is committed with the position reached, so a backfill
    that is killed (Ctrl-C, kill -9, a reboot) continues after its last
    committed line when you run the same command again; once it is complete,
    running it again says so and does nothing.

    \b
    Examples:
      evla backfill arxiv-metadata-oai-snapshot.json --categories cs.RO,cs.CV --since 2023-01-01
      evla backfill arxiv-metadata-oai-snapshot.json.gz --categories 'cs.*'
      evla backfill stream.jsonl --engine dask --workers 2
      evla backfill stream.jsonl --engine dask --address tcp://10.0.0.5:8786
    \b
    A Dask cluster (each machine needs `pip install 'evla-miner[cluster]'`):
      dask scheduler                      # prints tcp://HOST:8786
      dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1
    """
    from ..pipeline.backfill import backfill as run_backfill

    if engine == "local" and (address or workers):
        raise click.UsageError("--address and --workers apply to --engine dask")
    result = run_backfill(
        app.db(create=True),
        snapshot,
        categories=categories,
        since=as_date(since),
        until=as_date(until),
        engine=engine,
        address=address,
        workers=workers,
        chunk_size=chunk_size,
        reporter=RichReporter(),
        settings=app.settings.classify,
    )
    print_backfill_result(result, snapshot)


COMMANDS = [backfill]
