"""``evla serve``: a small web app over the same db for reviewers who prefer a browser.

The page holds no pipeline logic: the queue is ``propose.list_proposals``,
decisions go through ``review.record_decision`` / ``undo_decision`` and exports
through ``export.export_bibtex`` / ``export_markdown`` -- the very functions the
CLI calls. This module only filters for display, renders and guards.

Why the guards: titles, abstracts and authors come from arXiv, i.e. from
anyone, and a page that lets a click change the survey is worth attacking.
So Jinja2 autoescaping renders all paper text as text (and a strict
Content-Security-Policy allows no inline script even if something slipped
through); every state-changing request is a POST carrying a CSRF token
(Flask-WTF); the server binds 127.0.0.1 unless told otherwise, checks the Host
header against DNS rebinding, and refuses a non-loopback address without an
access token.

Why one connection per request: a weekly run may be writing while a reviewer
decides. Each request opens its own connection through ``open_db`` (WAL and a
30 s busy timeout), so a decision waits for the writer's transaction instead
of failing or being lost, and no connection is shared between server threads.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlite_utils
from flask import (
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response as WerkzeugResponse

from ..core.db import loads, open_db, papers_by_id, resolve_db_path
from ..core.errors import BadInput, EvlaError
from ..core.taxonomy import Taxonomy
from ..review.propose import list_proposals

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_ENV = "EVLA_SERVE_TOKEN"
QUEUE_PAGE_SIZE = 100
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
FILTER_KEYS = ("week", "pillar", "leaf", "min_score", "q")

# Sent with every response. The CSP allows only this app's own static files:
# no inline script, no inline style, no plugins, no framing, forms only to us.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # the access token may be in the first URL: never leak it to arXiv in a Referer
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to expose the triage page beyond this machine without an access token."""
    if not is_loopback(host) and not token:
        raise BadInput(
            f"binding to {host} makes the page reachable from other machines: "
            f"give an access token with --token or ${TOKEN_ENV}"
        )


# --- display helpers (no pipeline logic: only slicing what the library returns) ---


def week_bounds(week: str | None) -> tuple[date | None, date | None]:
    """``2025-W40`` (what ``<input type=week>`` sends) -> Monday and Sunday of that ISO week."""
    if not week:
        return None, None
    try:
        year, number = week.upper().split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
    except ValueError as exc:
        raise BadInput(f"week must look like 2025-W40, not {week!r}") from exc
    return monday, monday + timedelta(days=6)


def parse_min_score(raw: str | None) -> float | None:
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise BadInput(f"minimum score must be a number, not {raw!r}") from exc


def fmt(value, digits: int = 2) -> str:
    """A score for display: ``0.81``, or an en dash when there is none (no graph, not scored)."""
    return "–" if value is None else f"{value:.{digits}f}"


def filtered_queue(db: sqlite_utils.Database, args, taxonomy: Taxonomy) -> list[dict]:
    """The proposal queue, as ``list_proposals`` ranks it, narrowed by the page's filters.

    Items are proposal dicts; the pillar and leaf filters look at the suggested
    (best) leaf. Paper rows (abstracts) are read only when a search needs them;
    ``with_papers`` adds them to the items a page shows.
    """
    since, until = week_bounds(args.get("week"))
    proposals = list_proposals(db, since=since, until=until, limit=0)
    min_score = parse_min_score(args.get("min_score"))
    pillar, leaf = args.get("pillar") or None, args.get("leaf") or None
    words = (args.get("q") or "").lower().split()
    papers = papers_by_id(db, [p["id"] for p in proposals]) if words else {}
    queue = []
    for proposal in proposals:
        best = proposal.get("leaf")
        if leaf and best != leaf:
            continue
        if pillar and (best is None or taxonomy.pillar(best) != pillar):
            continue
        if min_score is not None and (proposal.get("score") or 0) < min_score:
            continue
        if words:
            paper = papers.get(proposal["id"]) or {}
            haystack = " ".join(
                str(x or "")
                for x in (
                    proposal["id"],
                    proposal.get("title"),
                    paper.get("authors"),
                    paper.get("abstract"),
                )
            ).lower()
            if not all(word in haystack for word in words):
                continue
        queue.append(proposal)
    return queue


def with_papers(db: sqlite_utils.Database, items: list[dict]) -> list[dict]:
    """The items, each with ``paper`` (its ``papers`` row, or {}) for display."""
    papers = papers_by_id(db, [item["id"] for item in items])
    return [{**item, "paper": papers.get(item["id"]) or {}} for item in items]


def arxiv_links(paper: dict) -> list[tuple[str, str]]:
    """Outbound links for a paper; URLs are built from ids, never taken from record text."""
    links = []
    paper_id = paper.get("id") or ""
    if paper_id and not paper_id.startswith("noid:"):
        links.append(("arXiv", f"https://arxiv.org/abs/{paper_id}"))
        links.append(("PDF", f"https://arxiv.org/pdf/{paper_id}"))
        links.append(("Semantic Scholar", f"https://www.semanticscholar.org/arxiv/{paper_id}"))
    if paper.get("doi"):
        links.append(("DOI", f"https://doi.org/{quote(paper['doi'], safe='/')}"))
    return links


# --- the app ----------------------------------------------------------------------


def create_app(
    db_path: str | Path | None = None,
    *,
    access_token: str | None = None,
    host: str = DEFAULT_HOST,
    reviewer: str | None = None,
    secret_key: bytes | None = None,
) -> Flask:
    """The Flask app over the db at ``db_path`` (default: ``$EVLA_DB``, else db/evla.db).

    ``access_token``: when set, every request must present it once (``?token=``,
    then a session cookie) or as ``Authorization: Bearer``. ``host`` is the address
    the server binds; on loopback the Host header must name a loopback host too.
    """
    check_bind(host, access_token)
    app = Flask(
        __name__, template_folder="templates", static_folder="static", static_url_path="/static"
    )
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        EVLA_DB_PATH=str(resolve_db_path(db_path)),
        EVLA_ACCESS_TOKEN=access_token,
        EVLA_REVIEWER=reviewer,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="evla_session",
        # a reviewer may leave the page open for hours; the token lives as long as the session
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if is_loopback(host):
        # DNS rebinding: a page on evil.example resolving to 127.0.0.1 would send Host: evil.example
        app.config["TRUSTED_HOSTS"] = ["localhost", "127.0.0.1", "[::1]", "::1", ".localhost"]
    CSRFProtect(app)
    app.jinja_env.globals.update(FILTER_KEYS=FILTER_KEYS, fmt=fmt)
    _register(app)
    return app


def get_db() -> sqlite_utils.Database:
    """This request's own connection (opened on first use, closed at teardown)."""
    if "db" not in g:
        from flask import current_app

        g.db = open_db(current_app.config["EVLA_DB_PATH"])
    return g.db


def _filters_from(args) -> dict:
    return {key: args.get(key) for key in FILTER_KEYS if args.get(key)}


def _register(app: Flask) -> None:
    @app.teardown_appcontext
    def close_db(_exc):
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.before_request
    def guard():
        request.host  # noqa: B018 -- validates Host against TRUSTED_HOSTS (400 when untrusted)
        token = app.config["EVLA_ACCESS_TOKEN"]
        if not token or request.endpoint == "static":
            return None

        def valid(given: str) -> bool:
            return bool(given) and hmac.compare_digest(given.encode(), token.encode())

        if "token" in request.args and valid(request.args["token"]):
            # the printed URL: remember the browser, then drop the token from the address bar
            session["token_ok"] = True
            if request.method == "GET":
                args = {k: v for k, v in request.args.items(multi=True) if k != "token"}
                return redirect(url_for(request.endpoint, **(request.view_args or {}), **args))
            return None
        auth = request.headers.get("Authorization", "")
        if session.get("token_ok") or (
            auth.startswith("Bearer ") and valid(auth[len("Bearer ") :])
        ):
            return None
        return Response(
            "Access token required: open the URL printed by `evla serve` (it ends in "
            "?token=...).\n",
            status=401,
            mimetype="text/plain",
        )

    @app.after_request
    def headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template(
            "error.html", status=400, message=f"{exc.description} Reload the page and try again."
        ), 400

    @app.errorhandler(EvlaError)
    def evla_error(exc):
        return render_template("error.html", status=400, message=str(exc)), 400

    @app.get("/")
    def queue():
        db = get_db()
        taxonomy = Taxonomy.from_db(db)
        filters = _filters_from(request.args)
        items = filtered_queue(db, request.args, taxonomy)
        return render_template(
            "queue.html",
            items=with_papers(db, items[:QUEUE_PAGE_SIZE]),
            total=len(items),
            filters=filters,
            taxonomy=taxonomy,
        )

    @app.get("/paper/<path:paper_id>")
    def paper(paper_id):
        db = get_db()
        context = paper_context(db, paper_id, request.args)
        if context is None:
            abort(404)
        return render_template("paper.html", **context)

    @app.post("/decide/<path:paper_id>")
    def decide(paper_id):
        from ..core.decisions import record_decision

        decision = request.form.get("decision", "")
        categories = [c for c in request.form.getlist("category") if c]  # a reject drops them
        note = (request.form.get("note") or "").strip() or None
        result = record_decision(
            get_db(),
            paper_id,
            decision,
            categories or None,
            note=note,
            reviewer=app.config["EVLA_REVIEWER"],
        )
        taxonomy = Taxonomy.from_db(get_db())
        verb = "Accepted" if result["decision"] == "accept" else "Rejected"
        where = (
            f" into {', '.join(taxonomy.name(c) for c in result['categories'])}"
            if result["decision"] == "accept"
            else ""
        )
        flash(f"{verb} {result['paper_id']}{where}.", "ok")
        session["last_decided"] = result["paper_id"]
        return _after_decision(request.form)

    @app.post("/undo/<path:paper_id>")
    def undo(paper_id):
        from ..core.decisions import undo_decision

        result = undo_decision(get_db(), paper_id, reviewer=app.config["EVLA_REVIEWER"])
        flash(f"Undid the {result['undone']} of {result['paper_id']}.", "ok")
        session.pop("last_decided", None)
        if request.form.get("back") == "queue":
            return redirect(url_for("queue", **_filters_from(request.form)))
        return redirect(
            url_for("paper", paper_id=result["paper_id"], **_filters_from(request.form))
        )

    @app.post("/export/<kind>")
    def export(kind):
        from ..review import export as exporting

        db = get_db()
        category = request.form.get("category") or None
        if kind == "bibtex":
            status = request.form.get("status") or "survey"
            text = exporting.export_bibtex(db, status=status, category=category).text
            filename, mimetype = "evla-survey.bib", "application/x-bibtex"
        elif kind == "markdown":
            text = exporting.export_markdown(db, category=category)
            filename, mimetype = "evla-survey.md", "text/markdown"
        else:
            abort(404)
        return Response(
            text,
            mimetype=mimetype,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


def paper_context(db: sqlite_utils.Database, paper_id: str, args) -> dict | None:
    """Everything the paper view shows, read from the db and the library; None if unknown."""
    from ..core.decisions import decision_history, effective_decision

    taxonomy = Taxonomy.from_db(db)
    queue_items = filtered_queue(db, args, taxonomy)
    ids = [item["id"] for item in queue_items]
    position = ids.index(paper_id) if paper_id in ids else None
    rows = list(db["papers"].rows_where("id = ?", [paper_id]))
    if rows:
        paper, stub = rows[0], False
    elif position is not None:
        # a cited work outside the db ("missing from the survey"): show what the proposal knows
        item = queue_items[position]
        paper, stub = (
            {"id": paper_id, "title": item.get("title"), "published": item.get("published")},
            True,
        )
    else:
        return None
    if position is None:
        next_id, prev_id = (ids[0] if ids else None), None
    else:
        next_id = ids[position + 1] if position + 1 < len(ids) else None
        prev_id = ids[position - 1] if position > 0 else None
    proposal = queue_items[position] if position is not None else None

    scores = None
    if db["scores"].exists():
        for row in db["scores"].rows_where("paper_id = ?", [paper_id]):
            scores = {
                "relevance": row["relevance"],
                "categories": loads(row["categories"], []) or [],
                "unsure": bool(row["unsure"]),
                "explanation": loads(row["explanation"], {}) or {},
            }
    suggested = (proposal or {}).get("categories") or (scores or {}).get("categories") or []
    nearest = (scores or {}).get("explanation", {}).get("nearest") or []
    nearest_ids = [n["id"] for n in nearest if n.get("id")]
    known_ids = set(papers_by_id(db, nearest_ids)) if nearest_ids else set()

    survey = None
    for row in db["survey"].rows_where("paper_id = ?", [paper_id]):
        survey = {
            "labels": loads(row["labels"], []) or [],
            "source": row["source"],
            "added_at": row["added_at"],
        }
    current = effective_decision(db, paper_id)
    chosen: str | None
    if current and current.decision == "accept" and current.categories:
        chosen = current.categories[0]
    elif survey and survey["labels"]:
        chosen = survey["labels"][0]
    else:
        chosen = suggested[0]["id"] if suggested else None
    return {
        "paper": paper,
        "taxonomy": taxonomy,
        "stub": stub,
        "links": arxiv_links(paper)
        if not stub
        else [("Find it", link) for link in [(proposal or {}).get("link")] if link],
        "proposal": proposal,
        "scores": scores,
        "suggested": suggested[:5],
        "nearest": nearest,
        "known_ids": known_ids,
        "terms": (scores or {}).get("explanation", {}).get("terms") or [],
        "influence": _influence(db, paper_id),
        "survey": survey,
        "history": decision_history(db, paper_id),
        "current": current,
        "chosen": chosen,
        "filters": _filters_from(args),
        "next_id": next_id,
        "prev_id": prev_id,
        "position": position,
        "queue_len": len(ids),
    }


def _influence(db: sqlite_utils.Database, paper_id: str, shown: int = 10) -> dict | None:
    """The graph's influence signals for a paper and who cites it, once ``evla graph`` ran."""
    from ..core.db import survey_paper_ids
    from ..scoring.graph import citers_of, has_graph

    if not db["influence"].exists() or not has_graph(db):
        return None
    rows = list(db["influence"].rows_where("node_id = ?", [paper_id]))
    if not rows:
        return None
    survey = survey_paper_ids(db)
    citers = citers_of(db, paper_id)
    citers.sort(key=lambda c: (c not in survey, c))
    titles = {pid: row.get("title") for pid, row in papers_by_id(db, citers[:shown]).items()}
    return {
        **rows[0],
        "citers": [
            {"id": c, "title": titles.get(c), "in_survey": c in survey} for c in citers[:shown]
        ],
        "more_citers": max(0, len(citers) - shown),
    }


def _after_decision(form) -> WerkzeugResponse:
    """Go on to the next paper of the (filtered) queue, or back to the queue."""
    filters = _filters_from(form)
    next_id = form.get("next") or ""
    if form.get("back") == "queue" or not next_id:
        return redirect(url_for("queue", **filters))
    return redirect(url_for("paper", paper_id=next_id, **filters))


def make_server(app: Flask, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, threads: int = 4):
    """A waitress server for the app (``.run()`` serves, ``.close()`` stops).

    waitress rather than Flask's development server: threads, no debugger, and
    it is what ``evla serve`` runs, so tests exercise the real thing.
    """
    from waitress import create_server

    try:
        return create_server(app, host=host, port=port, threads=threads, ident="evla-miner")
    except OSError as exc:
        raise EvlaError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (try another --port)"
        ) from exc
