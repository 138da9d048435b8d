"""The shipped scheduling examples are the README's, and every `evla` command in them parses:
a user who copies `examples/crontab` or `.github/workflows/weekly.yml` gets the documented job."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from evla_miner.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
WORKFLOW = ROOT / ".github" / "workflows" / "weekly.yml"
CRONTAB = ROOT / "examples" / "crontab"


def readme_block(language: str, first_line: str) -> str:
    """The README's fenced block of ``language`` that starts with ``first_line``."""
    for block in re.findall(rf"```{language}\n(.*?)```\n", README, flags=re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"no ```{language} block starting {first_line!r} in the README")


def evla_arguments(shell_line: str) -> list[str]:
    """The arguments of the `evla` command in a shell line (up to the first redirection)."""
    words = shlex.split(shell_line.split(" > ")[0])
    start = next(i for i, word in enumerate(words) if word.endswith("evla"))
    return words[start + 1 :]


def assert_parses(arguments: list[str]) -> None:
    """Options and values are checked by click without running the command."""
    command = cli.commands[arguments[0]]
    command.make_context(arguments[0], arguments[1:])


def test_the_workflow_is_the_readmes_and_only_runs_on_schedule_or_by_hand():
    shipped = WORKFLOW.read_text(encoding="utf-8")
    assert shipped.endswith(readme_block("yaml", "name: weekly\n"))
    workflow = yaml.safe_load(shipped)
    triggers = workflow[True]  # YAML 1.1 reads the bare key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}  # never push / pull_request
    assert triggers["schedule"] == [{"cron": "0 6 * * 1"}]


def test_the_workflows_weekly_command_parses():
    steps = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["weekly"]["steps"]
    [run] = [step["run"] for step in steps if step.get("name") == "weekly run"]
    arguments = evla_arguments(run.split("&&")[-1])
    assert arguments == ["weekly", "--format", "csv"]
    assert_parses(arguments)


def test_the_crontab_example_is_the_readmes_and_parses():
    shipped = [
        line for line in CRONTAB.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"
    ]
    assert shipped == readme_block("cron", "MAILTO=").splitlines()
    [job] = [line for line in shipped if "evla" in line]
    assert job.split()[:5] == ["0", "6", "*", "*", "1"]
    assert "mkdir -p db/reports &&" in job  # the redirection needs the directory on a first run
    assert_parses(evla_arguments(job.split("&&")[-1]))
