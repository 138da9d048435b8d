"""Citation clients replayed from real recorded responses.

A local ``http.server`` on 127.0.0.1 serves the vcrpy cassettes recorded from
api.semanticscholar.org (and OpenAlex work objects from ../shared), so each
test goes through the client's real HTTP, retry, paging and parsing code.
"""

from __future__ import annotations

import functools
import json
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import yaml
from local_http import LocalHttpServer

from evla_miner import __version__
from evla_miner.scoring.citations import (
    CitationApiError,
    OpenAlexClient,
    SemanticScholarClient,
)

S2_FIXTURES = Path(__file__).parent / "fixtures" / "semantic_scholar"


def _request_key(method: str, url: str, body) -> tuple:
    parts = urlsplit(url)
    query = tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    if body:
        body = json.loads(body) if isinstance(body, (str, bytes)) else body
        body = json.dumps(body, sort_keys=True)
    return method.upper(), unquote(parts.path), query, body or None


@functools.cache
def _load_cassette(path: Path) -> list[dict]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader)["interactions"]


class ReplayServer:
    """Serves recorded interactions; repeated identical requests get the next recording in turn."""

    def __init__(self):
        self.recordings: dict[tuple, list[tuple[int, dict, bytes]]] = {}
        self.served: dict[tuple, int] = {}
        self.log: list[dict] = []
        self.unmatched: list[tuple] = []

    def add_cassette(
        self, path: Path, strip_prefix: str = "https://api.semanticscholar.org"
    ) -> None:
        for item in _load_cassette(path):
            request, response = item["request"], item["response"]
            key = _request_key(
                request["method"], request["uri"].replace(strip_prefix, ""), request.get("body")
            )
            status = response["status"]["code"] if "status" in response else response["status_code"]
            body = response["body"]["string"] if "body" in response else response["content"]
            headers = {
                k: v[0] for k, v in (response.get("headers") or {}).items() if isinstance(v, list)
            }
            self.recordings.setdefault(key, []).append((status, headers, body.encode("utf-8")))

    def add(
        self, method: str, url: str, status: int, body: bytes, body_in=None, headers=None
    ) -> None:
        answers = self.recordings.setdefault(_request_key(method, url, body_in), [])
        answers.append((status, headers or {}, body))

    def __enter__(self):
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                key = _request_key(self.command, self.path, body)
                replay.log.append({"key": key, "headers": dict(self.headers)})
                answers = replay.recordings.get(key)
                if not answers:
                    replay.unmatched.append(key)
                    self.send_response(501)
                    self.end_headers()
                    self.wfile.write(b'{"error": "no recorded interaction"}')
                    return
                index = min(replay.served.get(key, 0), len(answers) - 1)
                replay.served[key] = index + 1
                status, headers, payload = answers[index]
                self.send_response(status)
                for name in ("Content-Type", "x-amzn-ErrorType", "Retry-After"):
                    if name in headers:
                        self.send_header(name, headers[name])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.http = LocalHttpServer(Handler)
        self.url = self.http.base_url
        return self

    def __exit__(self, *exc):
        self.http.close()


class FakeSleep:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def s2_replay():
    with ReplayServer() as server:
        for cassette in S2_FIXTURES.glob("*.yaml"):
            server.add_cassette(cassette)
        yield server


def s2_client(server, **kwargs):
    kwargs.setdefault("min_interval", 0)
    kwargs.setdefault("sleep", FakeSleep())
    return SemanticScholarClient(base_url=server.url + "/graph/v1", **kwargs)


def test_s2_single_paper(s2_replay):
    paper = s2_client(s2_replay).paper("10.1093/mind/lix.236.433", fields=["title"])
    assert paper == {
        "paperId": "2d5673caa9e6af3a7b82a43f19ee920992db07ad",
        "title": "Computing Machinery and Intelligence",
    }
    assert not s2_replay.unmatched


def test_s2_references_paging_and_null_paper_ids(s2_replay):
    refs = list(
        s2_client(s2_replay).references("10.2139/ssrn.2250500", fields=["title"], page_size=50)
    )
    assert not s2_replay.unmatched
    pages = [entry["key"][2] for entry in s2_replay.log]
    assert [dict(q)["offset"] for q in pages] == [
        "0",
        "50",
    ]  # second page requested, then stopped (no `next`)
    assert len(refs) > 50
    assert any(
        ref["paperId"] is None for ref in refs
    )  # unresolved references are kept, with their title
    assert all(ref.get("title") for ref in refs if ref["paperId"] is None)
    works = [SemanticScholarClient.cited_work(ref) for ref in refs]
    assert works[0]["title"] == (
        "Group lending or individual lending? Evidence from a randomised field experiment in "
        "Mongolia"
    )
    assert works[0]["s2_id"] == "e945ca4fdcf45b1a118f1462db7afa12629a131f"


def test_s2_citations_follow_next_until_last_page(s2_replay):
    citing = list(
        s2_client(s2_replay).citations("CorpusID:14514057", fields=["title"], page_size=100)
    )
    assert not s2_replay.unmatched
    assert len(s2_replay.log) == 19  # offsets 0 .. 1800
    assert 1800 < len(citing) <= 1900
    assert citing[0]["title"].startswith("We\u2019ve got you covered!")


def test_s2_batch_keeps_positions_of_unknown_ids(s2_replay):
    fields = (
        "abstract,authors,citationCount,citationStyles,corpusId,externalIds,fieldsOfStudy,influentialCitationCount,"
        "isOpenAccess,journal,openAccessPdf,paperId,publicationDate,publicationTypes,publicationVenue,referenceCount,"
        "s2FieldsOfStudy,title,url,venue,year"
    ).split(",")
    ids = [
        "CorpusId:211530585",
        "CorpusId:470667",
        "10.2139/ssrn.2250500",
        "0f40b1f08821e22e859c6050916cec3667778613",
    ]
    papers = s2_client(s2_replay).papers(ids, fields)
    assert not s2_replay.unmatched
    assert papers[0] is None
    assert [p["paperId"] for p in papers[1:]] == [
        "c31c87c591a25c64fbaa82e8ac6a81831b6ac7ce",
        "cb1ebd913c3724c599f6b276b14b5c6253da68f3",
        "0f40b1f08821e22e859c6050916cec3667778613",
    ]
    assert SemanticScholarClient.cited_work(papers[1])["doi"] == "10.2139/ssrn.288970"


def test_s2_404_is_none_and_cached(s2_replay, db):
    client = s2_client(s2_replay, db=db)
    assert (
        client.paper("0", fields=list("title")) is None
    )  # the recording asked for fields=t,i,t,l,e
    assert client.paper("0", fields=list("title")) is None
    assert client.requests_made == 1 and client.cache_hits == 1
    row = next(db["citation_cache"].rows)
    assert row["status"] == 404 and row["fetched_at"] and "Paper with id 0 not found" in row["body"]


def test_s2_429_then_200_backs_off_exponentially(s2_replay):
    sleep = FakeSleep()
    client = s2_client(s2_replay, sleep=sleep)
    fields = (
        "abstract,authors,citationCount,citationStyles,corpusId,externalIds,fieldsOfStudy,influentialCitationCount,"
        "isOpenAccess,journal,openAccessPdf,paperId,publicationDate,publicationTypes,publicationVenue,referenceCount,"
        "s2FieldsOfStudy,title,url,venue,year"
    ).split(",")
    page = client.search("turing", fields=fields, limit=100)
    assert not s2_replay.unmatched
    assert client.requests_made == 3
    assert sleep.calls == [5.0, 10.0]  # no Retry-After in the recording: 5 s, then doubled
    assert (
        page["total"] == 75689
        and page["data"][0]["title"] == "Large Language Models Pass the Turing Test"
    )
    assert SemanticScholarClient.cited_work(page["data"][0])["arxiv_id"] == "2503.23674"


def test_s2_429_gives_up_after_max_retries(s2_replay):
    sleep = FakeSleep()
    client = s2_client(s2_replay, sleep=sleep, max_retries=2)
    fields = (
        "abstract,authors,citationCount,citationStyles,corpusId,externalIds,fieldsOfStudy,influentialCitationCount,"
        "isOpenAccess,journal,openAccessPdf,paperId,publicationDate,publicationTypes,publicationVenue,referenceCount,"
        "s2FieldsOfStudy,title,url,venue,year"
    ).split(",")
    with pytest.raises(CitationApiError, match="HTTP 429.*Too Many Requests"):
        client.search("turing", fields=fields, limit=100)
    assert sleep.calls == [5.0]


def test_s2_api_key_header_and_cache_freshness(s2_replay, db):
    client = s2_client(s2_replay, db=db, api_key="secret-key")
    client.paper("10.1093/mind/lix.236.433", fields=["title"])
    assert s2_replay.log[-1]["headers"].get("x-api-key") == "secret-key"
    stale = s2_client(s2_replay, db=db, cache_max_age=timedelta(0))
    stale.paper("10.1093/mind/lix.236.433", fields=["title"])
    assert stale.requests_made == 1  # older than max_age: fetched again
    assert db["citation_cache"].count == 1  # and replaced, not duplicated
    assert "secret-key" not in json.dumps(list(db["citation_cache"].rows))


def test_s2_fetch_references_from_batch(db):
    """A batch answer with nested references (derived from the recorded Turing 1950 paper
    object)."""
    body = (S2_FIXTURES / "derived_batch_with_references.json").read_bytes()
    with ReplayServer() as server:
        fields = (
            "title,externalIds,"
            "references.paperId,references.title,references.year,references.externalIds"
        )
        server.add(
            "POST",
            f"/graph/v1/paper/batch?fields={fields}",
            200,
            body,
            body_in={"ids": ["ARXIV:1111.1111", "ARXIV:2222.2222", "ARXIV:3333.3333"]},
        )
        client = s2_client(server)
        refs = client.fetch_references(["1111.1111", "2222.2222", "3333.3333"])
        assert not server.unmatched
    assert refs["2222.2222"] is None
    assert refs["3333.3333"] == []  # "references": null
    first = refs["1111.1111"][0]
    assert first == {
        "title": "Calculating Instruments and Machines",
        "year": 1951,
        "arxiv_id": None,
        "doi": "10.2307/3610576",
        "s2_id": "348f436fd9a3965f5ff17db031a9f43426f89b8e",
        "openalex_id": None,
    }
    assert len(refs["1111.1111"]) == 14


def test_requests_are_paced_by_the_shared_http_client(s2_replay):
    """Fake clock: time moves only when the client sleeps or the test says so."""
    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    client = s2_client(s2_replay, min_interval=1.0, sleep=sleep, clock=lambda: now[0])
    client.paper("10.1093/mind/lix.236.433", fields=["title"])
    now[0] += 0.25
    client.paper("10.1093/mind/lix.236.433", fields=["title"])
    now[0] += 3.0
    client.paper("10.1093/mind/lix.236.433", fields=["title"])
    assert slept == [0.75] and client.requests_made == 3
    assert s2_replay.log[0]["headers"]["User-Agent"].startswith("evla-miner/")


def test_backoff_honours_retry_after_and_caps():
    client = SemanticScholarClient(base_url="http://127.0.0.1:9", backoff_base=5, backoff_max=60)
    assert [client.backoff(n, None) for n in range(1, 6)] == [5, 10, 20, 40, 60]

    class Response:
        headers = {"Retry-After": "7"}

    assert client.backoff(1, Response()) == 7.0


def test_retry_after_from_the_server_is_honoured_and_the_user_agent_has_the_version():
    """OpenAlex sends Retry-After with its 429s; the wait is at least that long, never shorter."""
    with ReplayServer() as server:
        slow_down = b'{"error": "slow down"}'
        server.add("GET", "/works/W1", 429, slow_down, headers={"Retry-After": "12"})
        server.add("GET", "/works/W1", 200, b'{"id": "W1", "referenced_works": []}')
        sleep = FakeSleep()
        client = OpenAlexClient(
            base_url=server.url, min_interval=0, sleep=sleep, backoff_base=1, backoff_max=60
        )
        work = client.work("W1")
        assert work["referenced_works"] == [] and client.requests_made == 2
        assert sleep.calls == [12.0]  # Retry-After, not the 1 s exponential start
        agents = [entry["headers"]["User-Agent"] for entry in server.log]
        assert all(agent.startswith(f"evla-miner/{__version__} (") for agent in agents)


def test_response_over_the_size_cap_is_refused():
    with ReplayServer() as server:
        server.add("GET", "/works/W1", 200, b'{"id": "W1", "pad": "' + b"x" * 5000 + b'"}')
        client = OpenAlexClient(
            base_url=server.url, min_interval=0, sleep=FakeSleep(), max_bytes=1000
        )
        with pytest.raises(CitationApiError, match="too large: 5,0[0-9]{2} bytes > cap 1,000"):
            client.work("W1")
        assert client.requests_made == 1  # not retried


@pytest.mark.shared
def test_openalex_work_objects(shared_dir, db):
    """OpenAlex work objects recorded by svp-harvester (CeCILL, read from ../shared, not copied)."""
    folder = shared_dir / "fixtures" / "openalex"
    with ReplayServer() as server:
        for name in (
            "open_alex_work_with_various_locations.json",
            "open_alex_work_with_hal_locations.json",
        ):
            data = json.loads((folder / name).read_text())
            server.add(
                "GET",
                "/works/" + OpenAlexClient.short_id(data["id"]) + "?api_key=k",
                200,
                (folder / name).read_bytes(),
            )
        server.add("GET", "/works/W0?api_key=k", 404, b'{"error": "Not Found"}')
        client = OpenAlexClient(
            base_url=server.url, db=db, min_interval=0, sleep=FakeSleep(), api_key="k"
        )
        work = client.work("W2910239314")
        empty = client.work("W1592538674")
        missing = client.work("W0")
        assert not server.unmatched
        assert dict(server.log[0]["key"][2]) == {"api_key": "k"}
    assert len(work["referenced_works"]) == 59
    assert empty["referenced_works"] == [] and missing is None
    cited = OpenAlexClient.cited_work(work)
    assert cited["openalex_id"] == "W2910239314" and cited["title"] == work["title"]
    assert db["citation_cache"].count == 3
