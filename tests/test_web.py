"""The web triage page through Flask's test client: queue and filters, paper view,
decisions through the review library, exports, and the guards (escaping, CSRF,
Host header, access token, POST only) and a decision made while another
connection holds the write lock."""

from __future__ import annotations

import re
import sqlite3
import threading

import pytest
import web_data
from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import loads, open_db
from evla_miner.core.errors import BadInput
from evla_miner.web.app import create_app, is_loopback, week_bounds

propose = pytest.importorskip(
    "evla_miner.review.propose", reason="evla_miner.review.propose (issue 5) is not in the tree yet"
)


@pytest.fixture
def db_path(tmp_path):
    return web_data.build(tmp_path / "web.db")


@pytest.fixture
def client(db_path):
    app = create_app(db_path, reviewer="web-tester")
    app.config["TESTING"] = True
    return app.test_client()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="item" data-id="([^"]+)"', html)


def decisions(db_path):
    db = open_db(db_path)
    try:
        return [dict(r) for r in db["decisions"].rows_where(order_by="id")]
    finally:
        db.close()


def survey_labels(db_path, paper_id):
    db = open_db(db_path)
    try:
        rows = list(db["survey"].rows_where("paper_id = ?", [paper_id]))
        return loads(rows[0]["labels"]) if rows else None
    finally:
        db.close()


# --- queue -------------------------------------------------------------------------


def test_queue_lists_the_library_ranking_in_order(client, db_path):
    page = client.get("/")
    assert page.status_code == 200
    db = open_db(db_path)
    expected = [p["id"] for p in propose.list_proposals(db, limit=0)]
    db.close()
    assert set(web_data.CANDIDATE_IDS) <= set(expected)
    assert queue_ids(page.text) == expected[: len(queue_ids(page.text))]
    assert "Quantized Diffusion Policies for Edge Robots" in page.text


@pytest.mark.parametrize(
    "query, wanted",
    [
        ("leaf=model.compression.quantization", ["2509.20003"]),
        ("pillar=data", ["2509.20004"]),
        ("q=simulation+robot", ["2509.20004"]),
        ("q=hopper", ["2509.20003"]),  # authors are searched too
        ("week=2025-W41", ["2510.00001", web_data.XSS_ID]),
        ("week=2025-W40&pillar=model", ["2509.20003"]),
    ],
)
def test_queue_filters(client, query, wanted):
    page = client.get(f"/?{query}")
    assert page.status_code == 200
    assert sorted(queue_ids(page.text)) == sorted(wanted)


def test_min_score_filter_uses_the_proposal_score(client, db_path):
    db = open_db(db_path)
    proposals = {p["id"]: p["score"] for p in propose.list_proposals(db, limit=0)}
    db.close()
    cut = sorted(proposals[i] for i in web_data.CANDIDATE_IDS)[2]  # keeps the best two candidates
    ids = queue_ids(client.get(f"/?min_score={cut}").text)
    assert sorted(i for i in ids if i in web_data.CANDIDATE_IDS) == sorted(
        i for i in web_data.CANDIDATE_IDS if proposals[i] >= cut
    )
    assert all(proposals[i] >= cut for i in ids)


def test_bad_filter_values_are_a_one_line_error(client):
    page = client.get("/?week=last-week")
    assert page.status_code == 400
    assert "week must look like 2025-W40" in page.text


def test_week_bounds():
    assert [d.isoformat() for d in week_bounds("2025-W41")] == ["2025-10-06", "2025-10-12"]
    assert week_bounds("") == (None, None)


# --- paper view and escaping ---------------------------------------------------------


def test_paper_view_shows_abstract_suggestion_reasons_neighbours_and_links(client):
    page = client.get("/paper/2509.20003")
    assert page.status_code == 200
    html = page.text
    assert "Four-bit weights and activations" in html
    assert (
        "Efficient Model Design › Model Compression › Quantization" in html
        or "Quantization" in html
    )
    assert 'href="/paper/2406.09246"' in html  # nearest survey paper, linked
    assert "0.81" in html
    assert 'href="https://arxiv.org/abs/2509.20003"' in html
    assert 'href="https://arxiv.org/pdf/2509.20003"' in html
    assert client.get("/paper/9999.99999").status_code == 404


def test_hostile_paper_text_is_escaped_everywhere(client):
    for url in ("/", f"/paper/{web_data.XSS_ID}", "/?q=tinyvla"):
        html = client.get(url).text
        assert "<script>window.__pwned" not in html
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
        assert "<img src=x" not in html
    html = client.get(f"/paper/{web_data.XSS_ID}").text
    assert '<a href="javascript:' not in html and "&lt;b&gt;markup&lt;/b&gt;" in html


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "HttpOnly" in client.get("/").headers.get("Set-Cookie", "HttpOnly")


# --- decisions ------------------------------------------------------------------------


def test_accept_reject_change_leaf_note_and_undo(client, db_path):
    token = csrf_of(client.get("/paper/2509.20003").text)
    response = client.post(
        "/decide/2509.20003",
        data={
            "csrf_token": token,
            "decision": "accept",
            "category": "model.compression.quantization",
            "note": "solid",
        },
    )
    assert response.status_code == 302
    # accept from the queue row, with the suggested leaf
    response = client.post(
        "/decide/2510.00001",
        data={
            "csrf_token": token,
            "decision": "accept",
            "category": "model.compression.token_optimization",
            "back": "queue",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].startswith("/")
    client.post(
        "/decide/2509.20004",
        data={"csrf_token": token, "decision": "reject", "note": "not efficiency"},
    )
    # change the leaf of an accepted paper: a new accept with another leaf wins
    client.post(
        "/decide/2509.20003",
        data={
            "csrf_token": token,
            "decision": "accept",
            "category": "model.arch.efficient_action_decoding",
        },
    )
    rows = decisions(db_path)
    assert [
        (r["paper_id"], r["decision"], loads(r["categories"]), r["note"], r["reviewer"])
        for r in rows
    ] == [
        ("2509.20003", "accept", ["model.compression.quantization"], "solid", "web-tester"),
        ("2510.00001", "accept", ["model.compression.token_optimization"], None, "web-tester"),
        ("2509.20004", "reject", [], "not efficiency", "web-tester"),
        ("2509.20003", "accept", ["model.arch.efficient_action_decoding"], None, "web-tester"),
    ]
    assert survey_labels(db_path, "2509.20003") == ["model.arch.efficient_action_decoding"]
    assert survey_labels(db_path, "2509.20004") is None
    # decided papers leave the queue
    remaining = queue_ids(client.get("/").text)
    assert not {"2509.20003", "2510.00001", "2509.20004"} & set(remaining)
    assert web_data.XSS_ID in remaining
    # the paper view shows the decision and its history; undo brings back the previous accept
    html = client.get("/paper/2509.20003").text
    assert "Accepted" in html and "Efficient Action Decoding" in html
    response = client.post("/undo/2509.20003", data={"csrf_token": token})
    assert response.headers["Location"] == "/paper/2509.20003"
    assert survey_labels(db_path, "2509.20003") == ["model.compression.quantization"]
    response = client.post(
        "/undo/2509.20004",
        data={"csrf_token": token, "back": "queue", "leaf": "data.collection.simulation"},
    )
    assert response.headers["Location"] == "/?leaf=data.collection.simulation"
    assert "2509.20004" in queue_ids(client.get("/").text)


def test_decision_moves_on_to_the_next_paper_of_the_filtered_queue(client):
    html = client.get("/paper/2510.00001?pillar=model").text
    match = re.search(r'name="next" value="([^"]+)"', html)
    assert match
    token = csrf_of(html)
    response = client.post(
        "/decide/2510.00001",
        data={"csrf_token": token, "decision": "reject", "next": match.group(1), "pillar": "model"},
    )
    assert response.headers["Location"] == f"/paper/{match.group(1)}?pillar=model"


def test_library_errors_are_shown_not_raised(client, db_path):
    token = csrf_of(client.get("/").text)
    response = client.post(
        "/decide/2509.20003",
        data={"csrf_token": token, "decision": "accept", "category": "no.such.leaf"},
    )
    assert response.status_code == 400
    assert "unknown taxonomy node" in response.text
    assert decisions(db_path) == []


def test_state_changes_need_post_and_a_csrf_token(client, db_path):
    assert client.get("/decide/2509.20003?decision=accept").status_code == 405
    assert client.post("/decide/2509.20003", data={"decision": "reject"}).status_code == 400
    client.get("/")  # a session with a token of its own
    response = client.post(
        "/decide/2509.20003", data={"decision": "reject", "csrf_token": "forged"}
    )
    assert response.status_code == 400 and "CSRF" in response.text
    assert client.post("/export/bibtex", data={}).status_code == 400
    assert decisions(db_path) == []


# --- export ---------------------------------------------------------------------------


def test_export_buttons_return_the_library_output(client, db_path):
    import bibtexparser

    token = csrf_of(client.get("/").text)
    client.post(
        "/decide/2509.20003",
        data={
            "csrf_token": token,
            "decision": "accept",
            "category": "model.compression.quantization",
        },
    )
    bib = client.post("/export/bibtex", data={"csrf_token": token, "status": "accepted"})
    assert bib.status_code == 200
    assert "attachment" in bib.headers["Content-Disposition"]
    entries = bibtexparser.loads(bib.text).entries
    assert [e["eprint"] for e in entries] == ["2509.20003"]
    markdown = client.post(
        "/export/markdown", data={"csrf_token": token, "category": "model.compression.quantization"}
    )
    assert markdown.status_code == 200
    assert "| Year | Venue | Paper | Website | Code |" in markdown.text
    assert "Quantized Diffusion Policies for Edge Robots" in markdown.text
    assert (
        client.post(
            "/export/bibtex", data={"csrf_token": token, "status": "everything"}
        ).status_code
        == 400
    )


# --- who may talk to the server --------------------------------------------------------


def test_loopback_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    with pytest.raises(BadInput, match="access token"):
        create_app(":memory:", host="0.0.0.0")


def test_dns_rebinding_host_is_refused(client):
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "127.0.0.1:8765"}).status_code == 200


def test_access_token(db_path):
    app = create_app(db_path, host="0.0.0.0", access_token="s3cret")
    client = app.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    first = client.get("/?token=s3cret&leaf=model.compression.quantization")
    assert first.status_code == 302 and "token" not in first.headers["Location"]
    assert client.get("/").status_code == 200  # the session remembers
    assert app.test_client().get("/paper/2509.20003").status_code == 401
    assert app.test_client().get("/static/app.js").status_code == 200  # no data in the assets


def test_serve_refuses_a_public_address_without_a_token(monkeypatch):
    monkeypatch.delenv("EVLA_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "Error: binding to 0.0.0.0" in result.output


# --- concurrency ------------------------------------------------------------------------


def test_decision_waits_for_a_writer_and_both_land(client, db_path):
    """A weekly run holding the write lock: the reviewer's POST waits (busy timeout) and nothing is
    lost."""
    token = csrf_of(client.get("/").text)
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("PRAGMA busy_timeout=30000")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "insert into papers (id, title, published) "
        "values ('2510.09999', 'Written by the weekly run', '2025-10-08')"
    )
    result = {}

    def decide():
        result["response"] = client.post(
            "/decide/2509.20004", data={"csrf_token": token, "decision": "reject", "back": "queue"}
        )

    thread = threading.Thread(target=decide)
    thread.start()
    thread.join(timeout=0.5)
    still_waiting = thread.is_alive()
    writer.execute("COMMIT")
    writer.close()
    thread.join(timeout=30)
    assert still_waiting, "the decision should have waited for the writer's transaction"
    assert result["response"].status_code == 302
    assert [(r["paper_id"], r["decision"]) for r in decisions(db_path)] == [
        ("2509.20004", "reject")
    ]
    db = open_db(db_path)
    assert db["papers"].get("2510.09999")["title"] == "Written by the weekly run"
    db.close()


def test_paper_view_shows_citation_signals_from_the_graph(db_path):
    """Influence and citing papers come from `evla graph` (built here from references)."""
    from evla_miner.scoring.graph import build_graph

    db = open_db(db_path)
    for position, (citing, cited) in enumerate(
        [
            ("2510.00001", "2509.20003"),
            (web_data.SURVEY_NEIGHBOUR, "2509.20003"),
            ("2510.00001", web_data.SURVEY_NEIGHBOUR),
        ]
    ):
        db["references"].insert(
            {"paper_id": citing, "position": position, "raw": cited, "arxiv_id": cited}
        )
    build_graph(db)
    survey_citations = db["influence"].get("2509.20003")["survey_citations"]
    db.close()
    client = create_app(db_path).test_client()
    html = client.get("/paper/2509.20003").text
    signals = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", html))
    assert signals["cited by papers in the db"] == "2"
    assert signals["cited by survey papers"] == str(survey_citations) == "1"
    citers = re.search(r'<ul class="citers">(.*?)</ul>', html, re.S).group(1)
    assert "KV-Reuse: Caching Visual Tokens" in citers and 'class="badge">survey<' in citers
    assert "No citation graph" not in html
