"""End to end in headless Chromium: the real waitress server, the real page and
its keyboard shortcuts, decisions checked in the db afterwards.

Drives Debian's ``/usr/bin/chromium`` through Python Playwright (never
``playwright install``: it downloads a browser). ``.ci/run`` installs the
package; elsewhere the test skips with the reason. Set ``EVLA_SCREENSHOTS=DIR``
to keep screenshots of the queue and of a paper view.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import web_data

from evla_miner.core.db import loads, open_db

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)",
    ),
    pytest.mark.timeout(180),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Python Playwright (pip install -e '.[test]')"
)
propose = pytest.importorskip(
    "evla_miner.review.propose", reason="evla_miner.review.propose (issue 5) is not in the tree yet"
)


@pytest.fixture
def server(tmp_path):
    from evla_miner.web.app import create_app, make_server

    db_path = web_data.build(tmp_path / "browser.db")
    app = create_app(db_path, reviewer="browser-tester")
    httpd = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.effective_port}", db_path
    httpd.close()
    thread.join(timeout=5)


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1360, "height": 900},
        )
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        yield page
        context.close()


def screenshot(page, name):
    target = os.environ.get("EVLA_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name), full_page=True)


def navigate(page, key):
    """Press a shortcut that submits a form, and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press(key)


def effective(db_path):
    """paper id -> (decision, categories, note) of the latest decision."""
    db = open_db(db_path)
    try:
        rows = db["decisions"].rows_where(order_by="id")
        return {r["paper_id"]: (r["decision"], loads(r["categories"]), r["note"]) for r in rows}
    finally:
        db.close()


def history(db_path, paper_id):
    db = open_db(db_path)
    try:
        return [
            r["decision"]
            for r in db["decisions"].rows_where("paper_id = ?", [paper_id], order_by="id")
        ]
    finally:
        db.close()


def test_triage_in_the_browser(server, page):
    base, db_path = server
    db = open_db(db_path)
    ranked = [p["id"] for p in propose.list_proposals(db, limit=0)]
    suggested = {p["id"]: p["leaf"] for p in propose.list_proposals(db, limit=0)}
    db.close()

    # the queue, best first; the hostile title is text, and no script of it ran
    page.goto(base + "/")
    rows = page.locator("#queue tr.item")
    assert [rows.nth(i).get_attribute("data-id") for i in range(rows.count())] == ranked
    assert (
        page.locator(f"tr[data-id='{web_data.XSS_ID}'] a.title").inner_text() == web_data.XSS_TITLE
    )
    assert page.evaluate("window.__pwned") is None
    screenshot(page, "queue.png")

    # accept the top paper from the queue with the keyboard: 'a' on the selected row
    first = ranked[0]
    navigate(page, "a")
    assert "Accepted " + first in page.locator(".flash").inner_text()
    assert page.locator(f"tr[data-id='{first}']").count() == 0
    # 'u' undoes it (the row comes back), 'a' accepts it again
    navigate(page, "u")
    assert "Undid the accept of " + first in page.locator(".flash").inner_text()
    assert page.locator("#queue tr.item").first.get_attribute("data-id") == first
    navigate(page, "a")
    assert page.locator(f"tr[data-id='{first}']").count() == 0

    # open a paper, reject it with 'r'; the page moves on to the next one
    page.click("tr[data-id='2509.20004'] a.title")
    assert (
        page.locator("#paper-title").inner_text()
        == "Scaling Simulation Data for Robot Manipulation Policies"
    )
    page.fill("#note", "data paper, not about efficiency")
    page.keyboard.press("Escape")
    navigate(page, "r")
    assert "Rejected 2509.20004" in page.locator(".flash").inner_text()

    # change the leaf: pick another leaf in the paper view, add a note, accept
    page.goto(base + "/paper/2509.20003")
    assert page.locator("#leaf").input_value() == suggested["2509.20003"]
    page.keyboard.press("l")
    assert page.evaluate("document.activeElement.id") == "leaf"
    page.select_option("#leaf", "model.arch.efficient_action_decoding")
    page.fill("#note", "the action head is the point")
    with page.expect_navigation():
        page.click("#accept")
    assert "Efficient Action Decoding" in page.locator(".flash").inner_text()

    # the hostile paper's own view: title and authors as text, nothing executed
    page.goto(base + f"/paper/{web_data.XSS_ID}")
    assert page.locator("#paper-title").inner_text() == web_data.XSS_TITLE
    assert "<img src=x" in page.locator(".authors").inner_text()
    assert page.locator("article img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    screenshot(page, "paper.png")

    # export: BibTeX and Markdown downloads
    page.goto(base + "/")
    page.select_option("#export-bibtex select[name=status]", "accepted")
    with page.expect_download() as download:
        page.click("#export-bibtex button")
    bib = Path(download.value.path()).read_text(encoding="utf-8")
    with page.expect_download() as download:
        page.click("#export-markdown button")
    markdown = Path(download.value.path()).read_text(encoding="utf-8")

    decided = effective(db_path)
    assert decided[first][0] == "accept" and decided[first][1] == [suggested[first]]
    assert history(db_path, first) == ["accept", "undo", "accept"]
    assert decided["2509.20004"] == ("reject", [], "data paper, not about efficiency")
    assert decided["2509.20003"] == (
        "accept",
        ["model.arch.efficient_action_decoding"],
        "the action head is the point",
    )
    accepted = sorted(pid for pid, d in decided.items() if d[0] == "accept")
    import bibtexparser

    assert sorted(e["eprint"] for e in bibtexparser.loads(bib).entries) == accepted
    assert "| Year | Venue | Paper | Website | Code |" in markdown
    assert "Quantized Diffusion Policies for Edge Robots" in markdown
