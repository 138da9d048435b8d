"""The PDF stage end to end against a local http.server on 127.0.0.1 serving
generated PDFs, HTML error pages, oversized bodies and 404s."""

from __future__ import annotations

import hashlib
import json
from http.server import BaseHTTPRequestHandler

import pytest
from click.testing import CliRunner
from local_http import LocalHttpServer
from pdf_factory import HTML_ERROR_PAGE, encrypted_pdf, paper_pdf
from pdf_server import PdfServer

from evla_miner.cli import cli
from evla_miner.core.db import db_dir, open_db
from evla_miner.core.records import upsert_papers
from evla_miner.core.settings import PdfSettings
from evla_miner.ingest.pdfs import (
    DownloadError,
    PdfClient,
    pdf_filename,
    process_pdfs,
    select_papers,
)

REFS = [
    "[1] A. Author and B. Author. Token pruning for robots. arXiv:2406.09246v2, 2024.",
    "[2] C. Writer. Proximal Policy Optimization Algorithms. In: arXiv preprint, 2017.",
    "[3] D. Person. Something nobody has in the db. In ICRA, 2022.",
]
PDF = paper_pdf(references=REFS)


@pytest.fixture
def server():
    srv = PdfServer(default_body=PDF)
    yield srv
    srv.close()


@pytest.fixture
def file_db(tmp_path):
    database = open_db(tmp_path / "evla.db")
    yield database
    database.close()


def _paper(paper_id, title="A paper", version=1):
    return {
        "id": paper_id,
        "version": version,
        "versions": [{"version": v, "created": "2024-06-01"} for v in range(1, version + 1)],
        "title": title,
        "published": "2024-06-01",
        "source": "test",
    }


def client_for(server, **kwargs):
    kwargs.setdefault("min_interval", 0)
    return PdfClient(base_url=server.url, **kwargs)


# --- the client -------------------------------------------------------------------


def test_client_checks_status_type_magic_and_size(server, tmp_path):
    server.pdf("2401.00001", 1)
    server.pdf("2401.00002", 1, HTML_ERROR_PAGE, content_type="text/html; charset=utf-8")
    server.pdf(
        "2401.00003", 1, HTML_ERROR_PAGE, content_type="application/pdf"
    )  # lies about its type
    server.pdf(
        "2401.00004", 1, b"%PDF-1.7\n" + b"0" * 50_000, content_type="application/octet-stream"
    )
    client = client_for(server, max_bytes=40_000)
    sha, size = client.download(client.url_for("2401.00001", 1), tmp_path / "a.pdf")
    assert (
        (tmp_path / "a.pdf").read_bytes() == PDF
        and size == len(PDF)
        and sha == hashlib.sha256(PDF).hexdigest()
    )
    expected = {
        "2401.00002": "not a PDF: content type text/html",
        "2401.00003": "not a PDF: an HTML/XML page",
        "2401.00004": "too large: 50,009 bytes > cap 40,000",
        "2401.00005": "HTTP 404 Not Found",
    }
    for paper_id, message in expected.items():
        with pytest.raises(DownloadError) as info:
            client.fetch(client.url_for(paper_id, 1))
        assert str(info.value) == message
    assert not (tmp_path / "a.pdf.part").exists()


def test_client_caps_bodies_without_content_length(tmp_path):
    class Chunked(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.end_headers()  # no Content-Length: read until close
            self.wfile.write(b"%PDF-1.7\n" + b"x" * 300_000)

        def log_message(self, *args):
            pass

    with LocalHttpServer(Chunked) as http:
        client = PdfClient(base_url=f"{http.base_url}/", min_interval=0, max_bytes=100_000)
        with pytest.raises(DownloadError, match="too large: over the cap of 100,000 bytes"):
            client.fetch(client.url_for("2401.00001", 1))


def test_client_waits_between_requests(server):
    server.pdf("2401.00001", 1)
    client = client_for(server, min_interval=0.3)
    for _ in range(3):
        client.fetch(client.url_for("2401.00001", 1))
    times = [t for t, _ in server.requests]
    # A lower bound only (sleep never returns early), so load cannot make it flaky.
    assert all(b - a >= 0.29 for a, b in zip(times, times[1:], strict=False))


def test_unreachable_server_is_a_download_error():
    client = PdfClient(base_url="http://127.0.0.1:9/", min_interval=0, timeout=2)
    with pytest.raises(DownloadError, match="^request failed: ConnectionError"):
        client.fetch(client.url_for("2401.00001", 1))


def test_pdf_filename_for_old_style_ids():
    assert pdf_filename("hep-th/9901001", 2) == "hep-th_9901001v2.pdf"
    assert pdf_filename("2406.04339", None) == "2406.04339v1.pdf"


# --- the stage --------------------------------------------------------------------


def test_process_downloads_extracts_and_matches(server, file_db):
    upsert_papers(
        file_db,
        [
            _paper("2406.09246", "OpenVLA: An Open-Source Vision-Language-Action Model", version=2),
            _paper("1707.06347", "Proximal Policy Optimization Algorithms"),
        ],
    )
    server.pdf("2406.09246", 2)
    server.pdf("1707.06347", 1)
    counts = process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=0))
    assert {
        k: counts[k]
        for k in ("selected", "downloaded", "extracted", "download_failed", "extract_failed")
    } == {
        "selected": 2,
        "downloaded": 2,
        "extracted": 2,
        "download_failed": 0,
        "extract_failed": 0,
    }
    assert counts["references"] == 6 and counts["requests"] == 2
    row = file_db["pdfs"].get("2406.09246")
    path = db_dir(file_db) / row["path"]
    assert row["path"] == "pdfs/2406.09246v2.pdf" and path.read_bytes() == PDF
    assert row["sha256"] == hashlib.sha256(PDF).hexdigest() and row["size"] == len(PDF)
    assert (
        row["status"] == "extracted" and row["pages"] == 4 and row["reference_source"] == "heading"
    )
    assert "1 Introduction" in row["text"]
    sections = json.loads(row["sections"])
    assert [s["name"] for s in sections][-2:] == ["references", "appendix"]
    refs = list(
        file_db.query(
            'select * from "references" where paper_id = ? order by position', ["2406.09246"]
        )
    )
    assert [(r["position"], r["arxiv_id"], r["matched_id"], r["match_method"]) for r in refs] == [
        (1, "2406.09246", None, None),  # the paper itself: no self-citation edge
        (2, None, "1707.06347", "title"),
        (3, None, None, None),
    ]
    assert json.loads(refs[0]["authors"]) == ["A. Author", "B. Author"]
    other = list(
        file_db.query(
            'select matched_id, match_method from "references" where paper_id = ? and position = 1',
            ["1707.06347"],
        )
    )
    assert other == [{"matched_id": "2406.09246", "match_method": "arxiv_id"}]
    run = file_db["runs"].get(counts["run_id"])
    assert run["kind"] == "pdf" and run["status"] == "ok"


def test_rerun_is_resumable_and_idempotent(server, file_db):
    upsert_papers(file_db, [_paper("2401.00001"), _paper("2401.00002")])
    server.pdf("2401.00001", 1)
    server.pdf("2401.00002", 1)
    process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=0))
    assert file_db["references"].count == 6
    again = process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=0))
    assert again["selected"] == 0 and again["requests"] == 0 and len(server.requests) == 2
    # Re-extraction (e.g. after a parser fix) replaces a paper's references.
    file_db["pdfs"].update("2401.00001", {"status": "downloaded"})
    third = process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=0))
    assert third["extracted"] == 1 and third["requests"] == 0
    assert file_db["references"].count == 6
    # A new version of the paper is downloaded again.
    upsert_papers(file_db, [_paper("2401.00002", version=2)])
    server.pdf("2401.00002", 2)
    fourth = process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=0))
    assert (
        fourth["downloaded"] == 1
        and file_db["pdfs"].get("2401.00002")["path"] == "pdfs/2401.00002v2.pdf"
    )


def test_failures_are_recorded_and_retried_next_run(server, file_db):
    upsert_papers(file_db, [_paper(f"2401.0000{n}") for n in range(1, 6)])
    server.pdf("2401.00001", 1)
    server.pdf("2401.00002", 1, HTML_ERROR_PAGE, content_type="text/html")
    server.pdf("2401.00003", 1, status=503, body=b"busy", content_type="text/plain")
    server.pdf("2401.00004", 1, encrypted_pdf())
    server.pdf("2401.00005", 1, PDF[: len(PDF) // 2])  # truncated body
    counts = process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=0))
    assert (counts["extracted"], counts["download_failed"], counts["extract_failed"]) == (1, 2, 2)
    rows = {r["paper_id"]: r for r in file_db["pdfs"].rows}
    assert rows["2401.00002"]["error"] == "not a PDF: content type text/html"
    assert rows["2401.00003"]["error"] == "HTTP 503 Service Unavailable"
    assert rows["2401.00004"]["error"] == "encrypted PDF: a password is needed to open it"
    assert rows["2401.00005"]["error"].startswith("truncated PDF")
    assert {rows[i]["stage"] for i in ("2401.00002", "2401.00003")} == {"download"}
    assert {rows[i]["stage"] for i in ("2401.00004", "2401.00005")} == {"extract"}
    assert all(
        rows[i]["status"] == "failed" and rows[i]["attempts"] == 1
        for i in rows
        if i != "2401.00001"
    )
    errors = json.loads(file_db["runs"].get(counts["run_id"])["errors"])
    assert len(errors) == 4

    # Next run: the server recovered; download failures are fetched again, extract
    # failures are re-read from the file already on disk (no new request).
    server.pdf("2401.00002", 1)
    server.pdf("2401.00003", 1)
    before = len(server.requests)
    again = process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=0))
    assert again["selected"] == 4 and again["extracted"] == 2 and again["extract_failed"] == 2
    assert sorted(p for _, p in server.requests[before:]) == [
        "/pdf/2401.00002v1",
        "/pdf/2401.00003v1",
    ]
    assert file_db["pdfs"].get("2401.00004")["attempts"] == 2
    # max_attempts stops retrying what keeps failing.
    assert (
        process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=0), max_attempts=2)[
            "selected"
        ]
        == 0
    )


def test_selection_by_relevance_includes_the_survey(server, file_db):
    upsert_papers(file_db, [_paper(f"2401.0000{n}") for n in range(1, 5)])
    file_db["scores"].insert_all(
        [
            {"paper_id": "2401.00001", "relevance": 0.9},
            {"paper_id": "2401.00002", "relevance": 0.2},
        ],
        pk="paper_id",
    )
    file_db["survey"].insert(
        {"paper_id": "2401.00003", "labels": "[]", "source": "seed"}, pk="paper_id"
    )
    assert [r["id"] for r in select_papers(file_db, 0.5)] == ["2401.00003", "2401.00001"]
    assert [r["id"] for r in select_papers(file_db, 0.5, include_survey=False)] == ["2401.00001"]
    assert len(select_papers(file_db, "all")) == 4
    assert [r["id"] for r in select_papers(file_db, 0.1, limit=1, include_survey=False)] == [
        "2401.00001"
    ]
    with pytest.raises(Exception, match="relevance threshold"):
        select_papers(file_db, "most")
    server.pdf("2401.00001", 1)
    server.pdf("2401.00003", 1)
    counts = process_pdfs(
        file_db, client_for(server), selection=0.5, settings=PdfSettings(workers=0)
    )
    assert counts["extracted"] == 2 and {r["paper_id"] for r in file_db["pdfs"].rows} == {
        "2401.00001",
        "2401.00003",
    }


@pytest.mark.slow
def test_process_pool_extracts_across_workers(server, file_db):
    ids = [f"2401.0000{n}" for n in range(1, 5)]
    upsert_papers(file_db, [_paper(i) for i in ids])
    for i in ids[:3]:
        server.pdf(i, 1)
    server.pdf(ids[3], 1, encrypted_pdf())
    counts = process_pdfs(file_db, client_for(server), settings=PdfSettings(workers=2))
    assert (counts["extracted"], counts["extract_failed"], counts["references"]) == (3, 1, 9)


# --- CLI --------------------------------------------------------------------------


def test_cli_pdf_command(server, tmp_path):
    db = open_db(tmp_path / "evla.db")
    upsert_papers(db, [_paper("2401.00001"), _paper("2401.00002")])
    db.close()
    server.pdf("2401.00001", 1)
    result = CliRunner().invoke(
        cli, ["pdf", "--base-url", server.url, "--interval", "0", "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "2 papers selected, 1 downloaded (1 failed), 1 read (0 failed), 3 references"
        in result.output
    )
    assert (tmp_path / "pdfs" / "2401.00001v1.pdf").is_file()


def test_cli_refs_text_and_jsonl(tmp_path):
    path = tmp_path / "paper.pdf"
    path.write_bytes(PDF)
    runner = CliRunner()
    result = runner.invoke(cli, ["refs", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == [
        "1",
        "arXiv:2406.09246",
        "2024",
        "Token",
        "pruning",
        "for",
        "robots",
    ]
    result = runner.invoke(cli, ["refs", str(path), "--format", "jsonl"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["position"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"position", "raw", "arxiv_id", "doi", "title", "year", "authors"}


def test_cli_refs_bad_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "error.pdf"
    path.write_bytes(HTML_ERROR_PAGE)
    result = CliRunner().invoke(cli, ["refs", str(path)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: not a PDF: an HTML/XML page"
