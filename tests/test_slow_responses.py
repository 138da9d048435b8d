"""A server that trickles its answer (one byte every 0.2 s, for 6 s) must not hold a
request for longer than the client's one deadline: every client gives up within about
``timeout`` seconds per attempt, retrying as its own policy says, not once per read."""

from __future__ import annotations

import time

import pytest
from arxiv_replay import golden
from local_http import LocalHttpServer, trickling_handler
from pdf_factory import paper_pdf

from evla_miner.ingest.arxiv_client import ArxivClient, ArxivUnavailable
from evla_miner.ingest.pdfs import DownloadError, PdfClient
from evla_miner.scoring.citations import CitationApiError, SemanticScholarClient

DEADLINE = 1.0
BOUND = 3.0  # generous: two attempts of about one second each, on a loaded machine


def test_arxiv_request_is_bounded_by_one_deadline():
    handler = trickling_handler(golden("id_0000.0000")["body"], "application/atom+xml")
    notes = []
    with LocalHttpServer(handler) as http:
        client = ArxivClient(
            f"{http.base_url}/api/query",
            delay_seconds=0,
            retries=1,
            backoff_seconds=0.01,
            timeout_seconds=DEADLINE,
            on_retry=notes.append,
        )
        began = time.monotonic()
        with pytest.raises(ArxivUnavailable, match="no response within 1 s after 2 attempts"):
            client.fetch_page("all:testing", 0, 10)
        elapsed = time.monotonic() - began
    assert len(handler.requests) == 2 and len(notes) == 1 and "no response within 1 s" in notes[0]
    assert elapsed < BOUND, f"took {elapsed:.1f} s"


def test_pdf_download_is_bounded_by_one_deadline():
    handler = trickling_handler(paper_pdf(), "application/pdf")
    with LocalHttpServer(handler) as http:
        client = PdfClient(base_url=f"{http.base_url}/pdf/", min_interval=0, timeout=DEADLINE)
        began = time.monotonic()
        with pytest.raises(DownloadError, match="^request failed: Timeout: no response within 1 s"):
            client.fetch(client.url_for("2401.00001", 1))
        elapsed = time.monotonic() - began
    assert len(handler.requests) == 1  # no retries inside a run
    assert elapsed < BOUND, f"took {elapsed:.1f} s"


def test_citation_request_is_bounded_by_one_deadline():
    handler = trickling_handler(b'{"paperId": "abc", "title": "A slow answer"}', "application/json")
    waits = []
    with LocalHttpServer(handler) as http:
        client = SemanticScholarClient(
            base_url=f"{http.base_url}/graph/v1",
            min_interval=0,
            timeout=DEADLINE,
            max_retries=2,
            sleep=waits.append,
        )
        began = time.monotonic()
        with pytest.raises(CitationApiError, match="no response within 1 s"):
            client.paper("ARXIV:2401.00001")
        elapsed = time.monotonic() - began
    assert len(handler.requests) == 2 and waits == [5.0]  # retried once, after the backoff
    assert elapsed < BOUND, f"took {elapsed:.1f} s"
