"""The ``evla`` command line: a click group whose commands live in
``evla_miner.commands.<stage>``. Commands parse options, call one library
function and print its result; library errors (``EvlaError``) become a one-line
``Error: ...`` and exit code 1."""

from __future__ import annotations

import click

from . import __version__
from .commands.common import AppContext
from .core.errors import EvlaError


class EvlaGroup(click.Group):
    """Turns library errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EvlaError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=EvlaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_path",
    envvar="EVLA_DB",
    type=click.Path(dir_okay=False),
    help="SQLite database file. Default: $EVLA_DB, else db/evla.db.",
)
@click.version_option(__version__, prog_name="evla")
@click.pass_context
def cli(ctx, db_path):
    """evla-miner keeps the survey "A Survey on Efficient Vision-Language-Action
    Models" up to date.

    \b
    A weekly run harvests new arXiv papers, reads their PDFs, classifies each
    into the survey's taxonomy, ranks what the survey is missing and writes a
    digest; reviewers then triage the proposals and export BibTeX/Markdown.

    \b
    First steps:
      evla init                      create the db and load the survey seeds
      evla harvest --snapshot FILE   import arXiv metadata (JSON lines)
      evla backfill FILE             import + embed + score a whole snapshot, resumable
      evla status                    what is in the db and what is pending
      evla weekly --demo             the whole weekly job on bundled data
    """
    ctx.obj = AppContext(db_path)


from .commands import backfill as _backfill  # noqa: E402
from .commands import classify as _classify  # noqa: E402
from .commands import export as _export  # noqa: E402
from .commands import graph as _graph  # noqa: E402
from .commands import harvest as _harvest  # noqa: E402
from .commands import pdf as _pdf  # noqa: E402
from .commands import propose as _propose  # noqa: E402
from .commands import review as _review  # noqa: E402
from .commands import serve as _serve  # noqa: E402
from .commands import setup as _setup  # noqa: E402
from .commands import survey as _survey  # noqa: E402
from .commands import triage as _triage  # noqa: E402
from .commands import weekly as _weekly  # noqa: E402

for _module in (
    _setup,
    _harvest,
    _weekly,
    _review,
    _export,
    _triage,
    _serve,
    _graph,
    _propose,
    _pdf,
    _classify,
    _backfill,
    _survey,
):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
