"""What every command shares: opening the db from the global ``--db``, date
options, and output helpers. No pipeline logic lives here."""

from __future__ import annotations

import json
from datetime import date, datetime

import click
from rich.console import Console

from ..core.db import open_db, resolve_db_path
from ..core.settings import Settings

ISO_DAY = click.DateTime(formats=["%Y-%m-%d"])


class AppContext:
    """Holds the global options; ``db()`` opens (and migrates) the database lazily and
    ``settings`` reads the config file once per command."""

    def __init__(self, db_path: str | None):
        self.db_path = db_path
        self._db = None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """Every config section, resolved once (flag > env > file > default); commands
        apply their flags with ``settings.with_flags``."""
        if self._settings is None:
            self._settings = Settings.load()
        return self._settings

    def db(self, default_path=None):
        if self._db is None:
            path = self.db_path or default_path
            self._db = open_db(resolve_db_path(path))
        return self._db

    @property
    def resolved_db_path(self):
        return resolve_db_path(self.db_path)


pass_app = click.make_pass_decorator(AppContext)


def as_date(value: datetime | None) -> date | None:
    return value.date() if value else None


def since_until_options(what: str = "the first version's date"):
    """``--since/--until YYYY-MM-DD`` (inclusive) for commands that filter by date."""

    def decorate(func):
        func = click.option(
            "--until",
            type=ISO_DAY,
            help=f"Only papers whose {what} is on or before this day (YYYY-MM-DD).",
        )(func)
        func = click.option(
            "--since",
            type=ISO_DAY,
            help=f"Only papers whose {what} is on or after this day (YYYY-MM-DD).",
        )(func)
        return func

    return decorate


def stdout_console() -> Console:
    return Console(soft_wrap=False)


def echo_jsonl(rows) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False))
