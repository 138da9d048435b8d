"""The CLI of the foundation: init, harvest --snapshot, status, --db/EVLA_DB, one-line errors."""

import json

from click.testing import CliRunner

from evla_miner.cli import cli


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_help_lists_every_command_with_help_text():
    result = run("--help")
    assert result.exit_code == 0
    for name, command in cli.commands.items():
        assert name in result.output
        assert command.help, f"{name} has no help text"


def test_init_harvest_status_roundtrip(tmp_path):
    db = str(tmp_path / "x.db")
    snapshot = tmp_path / "s.jsonl"
    snapshot.write_text(
        json.dumps(
            {
                "id": "2501.00001",
                "title": "T",
                "versions": [{"version": "v1", "created": "2025-01-02"}],
            }
        )
        + "\n{broken\n"
    )
    assert "29 taxonomy nodes" in run("--db", db, "init").output
    result = run("--db", db, "harvest", "--snapshot", str(snapshot))
    assert result.exit_code == 0
    assert "1 new" in result.output and "1 bad" in result.output
    assert "line 2: invalid JSON" in result.output
    status = json.loads(run("--db", db, "status", "--json").output)
    assert status["counts"]["papers"] == 107
    assert status["runs"][0]["kind"] == "snapshot"


def test_evla_db_environment_variable_chooses_the_database(tmp_path):
    path = tmp_path / "env.db"
    run("init", env={"EVLA_DB": str(path)})
    assert path.exists()


def test_bad_input_is_a_one_line_error_with_nonzero_exit(tmp_path):
    result = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "x.db"), "harvest", "--snapshot", "missing.jsonl"]
    )
    assert result.exit_code == 1
    assert result.output.strip() == "Error: snapshot file not found: missing.jsonl"
    bad_date = CliRunner().invoke(cli, ["harvest", "--snapshot", "x", "--since", "2025-13-01"])
    assert bad_date.exit_code == 2 and "--since" in bad_date.output
