"""Progress reporting for long library functions, without tying the library to a terminal.

Stages accept a ``Reporter``; the default one is silent (tests, library use),
the CLI passes ``RichReporter`` which draws a rich progress bar on stderr so
stdout stays clean for ``--format jsonl`` output.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter:
    """Silent reporter: the interface stages call."""

    def start(self, description: str, total: float | None = None, unit: str = "items") -> None:
        """Begin a task of ``total`` units (``unit="bytes"`` shows sizes instead of counts)."""

    def advance(self, amount: float = 1) -> None:
        pass

    def note(self, message: str) -> None:
        """A line of information a user running the job wants to see (not an error)."""

    def describe(self, description: str) -> None:
        """Replace the current task's description (e.g. with a live count and rate)."""

    def finish(self) -> None:
        pass


class RichReporter(Reporter):
    """A rich progress bar on stderr, one task at a time."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, description: str, total: float | None = None, unit: str = "items") -> None:
        self.finish()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn() if unit == "bytes" else MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def describe(self, description: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
