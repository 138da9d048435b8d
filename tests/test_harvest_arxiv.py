"""Live arXiv harvest, replayed: real recorded arXiv responses served by a local
http.server (tests/arxiv_replay.py) so the real client does real HTTP and Atom
parsing. Pacing and backoff are lowered through evla.toml, as a user could."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import arxiv
import pytest
from arxiv_replay import Corpus, ReplayServer, recorded_2016, recorded_2026
from click.testing import CliRunner

from evla_miner import __version__
from evla_miner.cli import cli
from evla_miner.core.db import loads, open_db
from evla_miner.core.http import RequestsTransport
from evla_miner.core.progress import Reporter
from evla_miner.core.records import paper_from_snapshot, upsert_papers
from evla_miner.core.settings import DEFAULT_HARVEST_QUERIES, Settings, queries_from_specs
from evla_miner.ingest.arxiv_client import (
    DEFAULT_ENDPOINT,
    ArxivClient,
    ArxivQueryError,
    ArxivUnavailable,
)
from evla_miner.ingest.harvest import client_from_settings, harvest_arxiv

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
RELEVANCE = {"sort_by": arxiv.SortCriterion.Relevance, "sort_order": arxiv.SortOrder.Descending}
ALL = {"testing": "all:testing"}
SINCE, UNTIL = date(2000, 1, 1), date(2026, 12, 31)
FAST_TOML = """
[harvest]
delay_seconds = 0.001
backoff_seconds = 0.001
timeout_seconds = 0.5
page_size = 7
"""


class NotesReporter(Reporter):
    def __init__(self):
        self.notes = []

    def note(self, message):
        self.notes.append(message)


@pytest.fixture(autouse=True)
def fast_config(tmp_path, monkeypatch):
    for name in (
        "EVLA_ARXIV_API_URL",
        "EVLA_ARXIV_QUERIES",
        "EVLA_ARXIV_DELAY",
        "EVLA_ARXIV_PAGE_SIZE",
        "EVLA_ARXIV_RETRIES",
        "EVLA_ARXIV_BACKOFF",
        "EVLA_ARXIV_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "evla.toml").write_text(FAST_TOML)


@pytest.fixture
def server():
    with ReplayServer(
        Corpus.golden_2026(), recorded_2026() + recorded_2016(), slow_seconds=1.5
    ) as srv:
        yield srv


def harvest_settings(overrides=None):
    """The ``[harvest]`` section as a command resolves it: flags over env over evla.toml."""
    return Settings.load().with_flags("harvest", **(overrides or {})).harvest


def harvest_queries(specs=()):
    flags = {"queries": queries_from_specs(specs)} if specs else {}
    return dict(harvest_settings(flags).queries)


def make_client(srv, reporter=None, **overrides):
    return client_from_settings(
        harvest_settings(overrides), on_retry=(reporter or NotesReporter()).note, endpoint=srv.url
    )


def harvest(db, srv, reporter=None, since=SINCE, until=UNTIL, queries=ALL, **overrides):
    reporter = reporter or NotesReporter()
    return harvest_arxiv(
        db,
        make_client(srv, reporter, **overrides),
        since,
        until,
        queries,
        reporter,
        settings=harvest_settings(overrides),
    )


def paper_count(db):
    return db.execute("select count(*), count(distinct id) from papers").fetchone()


# --- the client on exact recorded responses ---------------------------------------


def test_consecutive_recorded_pages_2026_format(server):
    client = make_client(server)
    ids = []
    for start in range(0, 60, 10):
        page = client.fetch_page("testing", start, 10, **RELEVANCE)
        assert page.total == 214881 and len(page.results) == 10 and page.attempts == 1
        ids += [r.get_short_id() for r in page.results]
    assert len(set(ids)) == 60
    assert ids[0] == "2202.12139v1"
    assert [r["start"] for r in server.requests] == [0, 10, 20, 30, 40, 50]


def test_recorded_2016_format_feeds(server):
    from evla_miner.ingest.harvest import paper_from_result

    client = make_client(server)
    page = client.fetch_page("au:del_maestro", 0, 10, **RELEVANCE)
    assert (page.total, len(page.results)) == (31, 10)
    (result,) = client.fetch_page(id_list=["1111.2011v2"], max_results=10, **RELEVANCE).results
    paper = paper_from_result(result)
    assert paper["id"] == "1111.2011" and paper["version"] == 2
    assert [v["version"] for v in paper["versions"]] == [1, 2]
    assert (
        paper["primary_category"] == "cond-mat.str-el"
        and paper["categories"].split()[0] == "cond-mat.str-el"
    )
    assert paper["pdf_url"] == "http://arxiv.org/pdf/1111.2011v2"
    assert paper["published"] < paper["updated"]


def test_recorded_id_lists_old_style_ids_and_title_zero(server):
    from evla_miner.ingest.harvest import paper_from_result

    client = make_client(server)
    fetch = lambda ids: client.fetch_page(id_list=ids, max_results=100, **RELEVANCE).results  # noqa: E731
    (old,) = fetch(["astro-ph/0601001"])
    assert paper_from_result(old)["id"] == "astro-ph/0601001"
    (quant,) = fetch(["quant-ph/0201082v1"])
    assert (paper_from_result(quant)["id"], paper_from_result(quant)["version"]) == (
        "quant-ph/0201082",
        1,
    )
    (zero,) = fetch(["2104.12255v1"])
    assert paper_from_result(zero)["title"] == "0"
    assert [r.get_short_id()[:10] for r in fetch(["0808.05394", "1707.08567"])] == ["1707.08567"]


def test_empty_result_is_not_retried_when_not_suspect(server):
    client = make_client(server)
    page = client.fetch_page(id_list=["0000.0000"], max_results=100, **RELEVANCE)
    assert (page.total, page.results, page.attempts, page.suspect_empty) == (0, [], 1, False)


def test_http_400_error_feed_is_a_clear_error_not_retried(server):
    client = make_client(server)
    with pytest.raises(ArxivQueryError, match="HTTP 400.*incorrect id format for abc"):
        client.fetch_page(id_list=["abc"], max_results=100, **RELEVANCE)
    assert len(server.requests) == 1


def test_endpoint_from_env(monkeypatch):
    assert ArxivClient().endpoint == DEFAULT_ENDPOINT
    monkeypatch.setenv("EVLA_ARXIV_API_URL", "http://127.0.0.1:8123/api/query")
    client = ArxivClient()
    assert client.url("cat:cs.RO", 0).startswith(
        "http://127.0.0.1:8123/api/query?search_query=cat%3Acs.RO"
    )
    assert "sortBy=submittedDate&sortOrder=ascending" in client.url("cat:cs.RO", 0)
    assert harvest_settings().delay_seconds == 0.001  # from evla.toml
    assert ArxivClient(delay_seconds=3.0).delay_seconds == 3.0


def test_backoff_is_exponential_and_requests_are_paced(server):
    """Fake clock: time only moves when the client sleeps, so spacing is exact."""
    now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(round(seconds, 6))
        now[0] += seconds

    stamps = []

    class Stamping(RequestsTransport):  # stamp each real request with the fake clock
        def send(self, *args, **kwargs):
            stamps.append(now[0])
            return super().send(*args, **kwargs)

    client = ArxivClient(
        server.url,
        delay_seconds=3.0,
        page_size=10,
        retries=4,
        backoff_seconds=5.0,
        sleep=sleep,
        clock=lambda: now[0],
        transport=Stamping(),
    )
    server.faults = ["503", "503", "503"]
    page = client.fetch_page("testing", 0, 10, **RELEVANCE)
    client.fetch_page("testing", 10, 10, **RELEVANCE)
    assert page.attempts == 4 and len(page.results) == 10
    assert [s for s in sleeps if s >= 5] == [5.0, 10.0, 20.0]  # the backoff waits
    # never faster than the delay
    assert all(b - a >= 3.0 for a, b in zip(stamps, stamps[1:], strict=False))
    assert stamps[-1] - stamps[-2] == 3.0


# --- harvest_arxiv through the replay server ------------------------------------------


def test_retry_after_is_honoured_and_the_user_agent_has_the_version(server):
    waits = []
    client = ArxivClient(
        server.url,
        delay_seconds=0,
        page_size=10,
        retries=2,
        backoff_seconds=1.0,
        sleep=waits.append,
    )
    server.faults = ["429-retry-after"]
    page = client.fetch_page("testing", 0, 10, **RELEVANCE)
    assert page.attempts == 2 and len(page.results) == 10
    assert waits == [12.0]  # Retry-After: 12, not the 1 s exponential start
    assert all(f"evla-miner/{__version__} (" in r["user_agent"] for r in server.requests)


def test_page_over_the_size_cap_is_refused_not_retried(server):
    client = ArxivClient(server.url, delay_seconds=0, page_size=10, retries=3, max_bytes=1000)
    too_large = r"too large: [0-9,]+ bytes > cap 1,000 after 1 attempts"
    with pytest.raises(ArxivUnavailable, match=too_large):
        client.fetch_page("testing", 0, 10, **RELEVANCE)
    assert len(server.requests) == 1


def test_harvest_pages_through_window_and_stores_api_records(db, server):
    result = harvest(db, server)
    assert paper_count(db) == (60, 60)
    assert result.counts["records"] == 60 and result.counts["inserted"] == 60
    assert result.counts["pages"] == 9 and result.counts["requests"] == 9  # ceil(60 / 7)
    assert [r["start"] for r in server.requests] == list(range(0, 60, 7))
    assert all(
        "submittedDate:[200001010000 TO 202612312359]" in r["search_query"] for r in server.requests
    )
    row = db["papers"].get("2202.12139")
    assert row["source"] == "arxiv-api" and row["doi"] == "10.1109/ICSTW55395.2022.00035"
    assert row["pdf_url"] == "https://arxiv.org/pdf/2202.12139v1" and row["comments"].startswith(
        "Artificial Intelligence"
    )
    assert loads(row["authors_parsed"])[0] == ["Ahuja", "Mohit Kumar", ""]
    assert loads(row["versions"]) == [{"version": 1, "created": "2022-02-24"}]
    published = [r["published"] for r in db.query("select published from papers order by rowid")]
    assert published == sorted(published)  # sorted by submission date
    run = db["runs"].get(result.run_id)
    assert (
        run["kind"] == "arxiv" and run["status"] == "ok" and loads(run["counts"])["inserted"] == 60
    )
    again = harvest(db, server)
    assert (
        again.counts["inserted"] == 0
        and again.counts["unchanged"] == 60
        and paper_count(db) == (60, 60)
    )


def test_harvest_2016_format(db):
    with ReplayServer(Corpus.legacy_2016()) as srv:
        result = harvest(db, srv, queries={"dm": "au:del_maestro"})
    corpus = Corpus.legacy_2016()
    assert result.counts["inserted"] == len(corpus.entries) == paper_count(db)[0]
    assert db["papers"].get("1111.2011")["version"] == 2


def test_cross_lists_are_flagged_and_primary_is_first(db, server):
    harvest(db, server, queries={"lg": "cat:cs.LG"})
    rows = list(db.query("select * from papers"))
    assert rows and all("cs.LG" in r["categories"].split() for r in rows)
    assert all(r["categories"].split()[0] == r["primary_category"] for r in rows)
    assert {r["cross_list"] for r in rows if r["primary_category"] == "cs.LG"} == {0}
    assert {r["cross_list"] for r in rows if r["primary_category"] != "cs.LG"} == {1}
    assert db["papers"].get("2202.12139")["cross_list"] == 1  # cs.SE primary, cross-listed to cs.LG


def test_same_upsert_rules_as_snapshot_import(db):
    snapshot_record = {
        "id": "1111.2011",
        "title": "old title",
        "categories": "cond-mat.str-el",
        "versions": [{"version": "v1", "created": "Wed, 9 Nov 2011 00:00:00 GMT"}],
    }
    upsert_papers(db, [paper_from_snapshot(snapshot_record, source="snapshot:x")])
    with ReplayServer(Corpus.legacy_2016()) as srv:
        result = harvest(db, srv, queries={"dm": "au:del_maestro"})
    row = db["papers"].get("1111.2011")
    assert row["version"] == 2 and row["title"].startswith("Quantum Criticality")
    assert [v["version"] for v in loads(row["versions"])] == [1, 2]
    assert row["source"] == "arxiv-api" and result.counts["updated"] == 1


FAULTS = ["503", "429", "slow", "truncate", "truncate-noclen", "reset", "empty", "html", "garbage"]


@pytest.mark.parametrize("fault", FAULTS)
def test_faults_on_a_page_are_retried_and_nothing_is_lost(db, server, fault):
    server.faults = [None, fault]  # the second page
    reporter = NotesReporter()
    result = harvest(db, server, reporter)
    assert paper_count(db) == (60, 60)
    assert result.counts["retries"] == 1 and result.counts["flagged"] == 0
    assert [r["start"] for r in server.requests][:3] == [0, 7, 7]
    expected = {
        "503": "HTTP 503",
        "429": "HTTP 429",
        "slow": "no response within 0.5 s",
        "truncate": "truncated response body",
        "truncate-noclen": "truncated response body",
        "reset": "connection error",
        "empty": "empty page",
        "html": "arXiv answered with an HTML page (HTTP 200) instead of an Atom "
        "feed (title: 503 Service Unavailable)",
        "garbage": "arXiv answered with a body that is not XML (HTTP 200) instead of "
        "an Atom feed (starts with b'\\x80\\x81\\x82",
    }[fault]
    assert (
        len(reporter.notes) == 1
        and expected in reporter.notes[0]
        and "retrying in" in reporter.notes[0]
    )


def test_a_body_that_is_not_a_feed_is_named_in_the_final_error(server):
    server.faults = ["html"] * 3
    client = make_client(server, retries=2)
    with pytest.raises(ArxivUnavailable) as info:
        client.fetch_page("testing", 0, 10, **RELEVANCE)
    assert str(info.value).startswith(
        "arXiv API unavailable: arXiv answered with an HTML page (HTTP 200) instead of an "
        "Atom feed (title: 503 Service Unavailable) after 3 attempts"
    )
    assert "truncated" not in str(info.value)
    server.faults = ["garbage"]
    not_xml = (
        r"a body that is not XML \(HTTP 200\) instead of an Atom feed "
        r"\(starts with b'\\x80.* after 1 attempts"
    )
    with pytest.raises(ArxivUnavailable, match=not_xml):
        make_client(server, retries=0).fetch_page("testing", 0, 10, **RELEVANCE)


def test_persistent_failure_is_one_line_error_and_rerun_resumes(server):
    server.faults = [None] + ["503"] * 6  # default retries = 5 -> 6 attempts on page 2
    runner = CliRunner()
    args = [
        "harvest",
        "--since",
        "2000-01-01",
        "--until",
        "2026-12-31",
        "--query",
        "testing=all:testing",
    ]
    env = {"EVLA_ARXIV_API_URL": server.url}
    failed = runner.invoke(cli, args, env=env)
    assert failed.exit_code == 1
    assert "Error: arXiv API unavailable: HTTP 503 after 6 attempts" in failed.output
    assert "Traceback" not in failed.output and isinstance(failed.exception, SystemExit)
    db = open_db()
    assert db["runs"].get(1)["status"] == "failed" and paper_count(db) == (7, 7)
    done = runner.invoke(cli, args, env=env)
    assert done.exit_code == 0, done.output
    assert "60 records" not in done.output and "53 records: 53 new" in done.output
    db = open_db()
    assert paper_count(db) == (60, 60)
    assert (
        loads(db["runs"].get(2)["params"])["resumed_from"] == 1
        and db["runs"].get(2)["status"] == "ok"
    )


def test_unreachable_endpoint_is_one_line_error(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        cli,
        ["harvest", "--query", "cat:cs.RO"],
        env={"EVLA_ARXIV_API_URL": f"http://127.0.0.1:{port}/api/query", "EVLA_ARXIV_RETRIES": "1"},
    )
    assert result.exit_code == 1
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith("Error: arXiv API unavailable: connection error")
    )
    assert "Traceback" not in result.output


def test_cli_http_400_error_feed(server):
    result = CliRunner().invoke(
        cli, ["harvest", "--query", "BAD_QUERY"], env={"EVLA_ARXIV_API_URL": server.url}
    )
    assert result.exit_code == 1
    assert result.output.strip().endswith(
        "Error: arXiv rejected the request (HTTP 400): incorrect id format for abc"
    )


@pytest.mark.parametrize("fault", ["stale", "short"])
def test_stale_or_short_page_is_asked_for_again_and_nothing_is_lost(db, server, fault):
    """arXiv under load serves the previous page again, or fewer entries than asked; a
    harvester that trusts the page and moves on leaves a hole no later run looks at."""
    server.faults = [None, fault]  # the second page (offset 7)
    reporter = NotesReporter()
    result = harvest(db, server, reporter)
    assert paper_count(db) == (60, 60)
    assert result.counts["rerequests"] == 1 and result.counts["flagged"] == 0
    assert [r["start"] for r in server.requests][:3] == [0, 7, 7]
    assert any("page at offset 7 brought" in note for note in reporter.notes)
    assert db["harvest_watermarks"].get("all:testing")["until"] == "2026-12-31T23:59"


def test_window_that_stays_incomplete_is_flagged_and_keeps_the_watermark(db, server):
    harvest(db, server, since=date(2000, 1, 1), until=date(2021, 12, 31))
    mark = db["harvest_watermarks"].get("all:testing")["until"]
    server.faults = [None] + ["stale"] * 6  # page 2 and every re-request of it are stale
    result = harvest(db, server, since=date(2021, 12, 30), until=UNTIL)
    assert result.counts["flagged"] == 1 and result.counts["rerequests"] == 5
    assert result.counts["missing"] == 7
    assert result.errors[0]["reason"].startswith("incomplete: 21 of 28 records received")
    assert "offset 7 stayed stale or short after 5 re-requests" in result.errors[0]["reason"]
    run = db["runs"].get(result.run_id)
    assert run["status"] == "ok" and "1 window(s) flagged" in run["message"]
    assert loads(run["counts"])["missing"] == 7
    assert db["harvest_watermarks"].get("all:testing")["until"] == mark
    # the next default run asks for the window again and completes it
    result = harvest(db, server, since=date(2021, 12, 30), until=UNTIL)
    assert result.counts["flagged"] == 0 and paper_count(db) == (60, 60)


def test_cli_summary_names_the_incomplete_window(server, tmp_path):
    server.faults = [None] + ["short"] * 6
    env = {"EVLA_DB": str(tmp_path / "h.db"), "EVLA_ARXIV_API_URL": server.url}
    args = ["harvest", "--since", "2000-01-01", "--until", "2026-12-31", "--query", "t=all:testing"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "1 flagged" in result.stdout
    assert (
        "FLAGGED t 2000-01-01T00:00..2026-12-31T23:59: incomplete: 57 of 60 records"
        in result.stderr
    )
    db = open_db(tmp_path / "h.db")
    assert db["harvest_watermarks"].count == 0


def test_empty_window_without_history_is_reported_not_flagged(db, server):
    result = harvest(db, server, since=date(1990, 1, 1), until=date(1990, 12, 31))
    assert (
        result.counts["empty"] == 1 and result.counts["flagged"] == 0 and len(server.requests) == 1
    )
    assert result.errors == []


def test_suspect_empty_first_page_is_retried_then_flagged(db, server):
    harvest(db, server, since=date(2000, 1, 1), until=date(2021, 12, 31))
    mark = db["harvest_watermarks"].get("all:testing")["until"]
    assert mark == "2021-12-31T23:59"
    # Same query, a later window that has papers, but arXiv answers with empty feeds.
    server.faults = ["empty"] * 6
    reporter = NotesReporter()
    result = harvest(db, server, reporter, since=date(2021, 12, 30), until=UNTIL)
    assert result.counts["flagged"] == 1 and result.counts["retries"] == 5
    assert (
        result.errors[0]["query"] == "testing" and "normally has some" in result.errors[0]["reason"]
    )
    run = db["runs"].get(result.run_id)
    assert run["status"] == "ok" and "1 window(s) flagged" in run["message"]
    assert db["harvest_watermarks"].get("all:testing")["until"] == mark  # not advanced past the gap
    # a single empty answer is only a hiccup: retried, then the papers come
    server.faults = ["empty"]
    result = harvest(db, server, since=date(2021, 12, 30), until=UNTIL)
    assert (
        result.counts["flagged"] == 0 and result.counts["retries"] == 1 and paper_count(db)[0] == 60
    )


def test_window_over_the_per_query_cap_is_split(db, server, tmp_path):
    (tmp_path / "evla.toml").write_text(FAST_TOML + "max_results_per_query = 25\n")
    result = harvest(db, server)
    assert (
        paper_count(db) == (60, 60)
        and result.counts["split"] >= 1
        and result.counts["flagged"] == 0
    )
    slices = list(db.query("select * from harvest_slices where run_id = ?", [result.run_id]))
    assert all(s["total"] <= 25 for s in slices if s["status"] == "done")
    assert db["harvest_watermarks"].get("all:testing")["until"] == "2026-12-31T23:59"


def test_watermark_with_two_day_overlap(db, server):
    harvest(db, server, since=date(2020, 1, 1), until=date(2024, 3, 10))
    server.requests.clear()
    result = harvest(db, server, since=None, until=None)
    assert "submittedDate:[202403082359 TO " in server.requests[0]["search_query"]
    assert paper_count(db)[0] == 60 - sum(
        1 for p, _, _ in Corpus.golden_2026().entries.values() if p.year < 2020
    )
    assert (
        db["harvest_watermarks"].get("all:testing")["until"]
        == loads(db["runs"].get(result.run_id)["params"])["until"]
    )
    # a back-fill of an older range neither moves the watermark back nor over a gap
    mark = db["harvest_watermarks"].get("all:testing")["until"]
    harvest(db, server, since=date(2001, 1, 1), until=date(2010, 1, 1))
    assert db["harvest_watermarks"].get("all:testing")["until"] == mark


def test_sigkill_mid_run_then_rerun_converges(tmp_path):
    """A real `evla harvest` subprocess, killed with SIGKILL mid-run, then run again."""
    env = dict(
        os.environ,
        EVLA_DB=str(tmp_path / "kill.db"),
        EVLA_ARXIV_PAGE_SIZE="3",
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    args = [
        sys.executable,
        "-m",
        "evla_miner",
        "harvest",
        "--since",
        "2000-01-01",
        "--until",
        "2026-12-31",
        "--query",
        "testing=all:testing",
    ]
    with ReplayServer(Corpus.golden_2026(), response_delay=0.05) as srv:
        env["EVLA_ARXIV_API_URL"] = srv.url
        proc = subprocess.Popen(
            args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while len(srv.requests) < 8 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        served_before = len(srv.requests)
        db = open_db(tmp_path / "kill.db")
        assert 0 < paper_count(db)[0] < 60 and db["runs"].get(1)["status"] == "running"
        db.close()
        done = subprocess.run(
            args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        resumed_at = srv.requests[served_before]["start"]
    db = open_db(tmp_path / "kill.db")
    assert paper_count(db) == (60, 60)
    assert resumed_at > 0  # picked up at the last committed page, not from scratch
    first, second = db["runs"].get(1), db["runs"].get(2)
    assert first["status"] == "interrupted" and "resumed by run 2" in first["message"]
    assert second["status"] == "ok" and loads(second["params"])["resumed_from"] == 1
    assert "resuming run 1" in done.stderr


def test_resumed_run_without_window_goes_on_to_now(db, server):
    server.faults = [None] + ["503"] * 6
    with pytest.raises(ArxivUnavailable):
        harvest(db, server, since=date(2000, 1, 1), until=date(2024, 3, 10))
    server.requests.clear()
    result = harvest(db, server, since=None, until=None)
    assert loads(db["runs"].get(result.run_id)["params"])["resumed_from"] == 1
    assert (
        server.requests[0]["start"] == 7
        and "TO 202403102359]" in server.requests[0]["search_query"]
    )
    assert any("submittedDate:[202403082359 TO " in r["search_query"] for r in server.requests)
    assert paper_count(db) == (60, 60)


# --- config ---------------------------------------------------------------------


def test_query_config_precedence(tmp_path, monkeypatch):
    assert harvest_queries() == DEFAULT_HARVEST_QUERIES
    assert "cat:cs.RO" == DEFAULT_HARVEST_QUERIES["robotics"]
    (tmp_path / "evla.toml").write_text(
        FAST_TOML + '[harvest.queries]\nsurvey = "ti:VLA"\nrobotics = "cat:cs.RO AND abs:robot"\n'
    )
    assert harvest_queries() == {
        **DEFAULT_HARVEST_QUERIES,
        "robotics": "cat:cs.RO AND abs:robot",
        "survey": "ti:VLA",
    }
    (tmp_path / "evla.toml").write_text(
        FAST_TOML + 'replace_default_queries = true\n[harvest.queries]\nsurvey = "ti:VLA"\n'
    )
    assert harvest_queries() == {"survey": "ti:VLA"}
    monkeypatch.setenv("EVLA_ARXIV_QUERIES", "cat:cs.AI; ro=cat:cs.RO")
    assert harvest_queries() == {"q1": "cat:cs.AI", "ro": "cat:cs.RO"}
    assert harvest_queries(["x=cat:cs.CV"]) == {"x": "cat:cs.CV"}
    monkeypatch.setenv("EVLA_ARXIV_DELAY", "0.5")
    assert harvest_settings().delay_seconds == 0.5
    assert harvest_settings({"delay_seconds": 4}).delay_seconds == 4.0
    monkeypatch.delenv("EVLA_ARXIV_DELAY")
    (tmp_path / "evla.toml").unlink()
    assert harvest_settings().delay_seconds == 3.0 and harvest_settings().page_size == 1000


def test_snapshot_branch_rejects_live_options(tmp_path):
    snap = tmp_path / "s.jsonl"
    snap.write_text(
        json.dumps(
            {
                "id": "2401.00001",
                "title": "t",
                "versions": [{"version": "v1", "created": "2024-01-01"}],
            }
        )
        + "\n"
    )
    result = CliRunner().invoke(cli, ["harvest", "--snapshot", str(snap), "--query", "cat:cs.RO"])
    assert (
        result.exit_code == 2 and "--query and --delay apply to the live harvest" in result.output
    )
    assert CliRunner().invoke(cli, ["harvest", "--snapshot", str(snap)]).exit_code == 0
