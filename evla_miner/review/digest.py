"""The weekly digest: what a run found, for people who do not run the CLI.

Written as Markdown (commit it, read it on GitHub) and self-contained HTML
(mail it, open it anywhere), plus the bar chart of proposals per pillar as an
SVG file the Markdown links to; the HTML inlines the same SVG. No JavaScript,
no external assets, every value HTML-escaped.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

import sqlite_utils

from ..core.db import now_iso
from ..core.safe_output import md_text, md_url
from ..core.taxonomy import Taxonomy

UNCLASSIFIED = "(no category)"


def proposals_per_pillar(db: sqlite_utils.Database, proposals: list[dict]) -> list[tuple[str, int]]:
    """(pillar name, count) for every pillar in taxonomy order (zeros kept), then extras
    (auxiliary roots, unclassified)."""
    taxonomy = Taxonomy.from_db(db)
    counts: Counter = Counter()
    for proposal in proposals:
        leaf = proposal.get("leaf") or taxonomy.suggested_leaf(proposal.get("categories") or [])
        root = taxonomy.pillar(leaf)
        counts[taxonomy.name(root) if root else UNCLASSIFIED] += 1
    rows = [(n["name"], counts.pop(n["name"], 0)) for n in taxonomy.pillars]
    rows += [(n["name"], counts.pop(n["name"])) for n in taxonomy.roots if n["name"] in counts]
    rows += sorted(counts.items())
    return rows


def bar_chart_svg(rows: list[tuple[str, int]], title: str) -> str:
    """A horizontal bar chart as a standalone SVG document (escaped labels, no scripts)."""
    label_width, bar_width, row_height, top = 300, 300, 26, 36
    height = top + row_height * max(len(rows), 1) + 10
    width = label_width + bar_width + 60
    biggest = max((count for _, count in rows), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 '
        f'{width} {height}" '
        f'role="img" aria-label="{html.escape(title)}" font-family="sans-serif" font-size="13">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="0" y="20" font-weight="bold" font-size="15">{html.escape(title)}</text>',
    ]
    for index, (label, count) in enumerate(rows):
        y = top + index * row_height
        length = round(bar_width * count / biggest)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 16}" '
            f'text-anchor="end">{html.escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y + 4}" width="{length}" height="{row_height - 8}" '
            'fill="#4c78a8"/>'
        )
        parts.append(f'<text x="{label_width + length + 6}" y="{y + 16}">{count}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _summary_lines(stages: dict, demo: bool) -> list[str]:
    lines = []
    harvest = stages.get("harvest") or {}
    if harvest:
        new = harvest.get("inserted", 0)
        lines.append(
            f"Harvest: {new:,} new papers, {harvest.get('updated', 0):,} updated"
            + (f", {harvest.get('bad', 0):,} bad records" if harvest.get("bad") else "")
            + (
                f", {harvest['flagged']} window(s) FLAGGED (incomplete or empty; not trusted)"
                if harvest.get("flagged")
                else ""
            )
            + (" (nothing new this week)" if not new and not harvest.get("updated") else "")
        )
    classify = stages.get("classify") or {}
    if classify:
        lines.append(
            f"Classifier: {classify.get('scored', 0):,} papers scored"
            + (f", model {classify['model']}" if classify.get("model") else "")
            + (
                " (retrained first: no model matched the current decisions)"
                if classify.get("retrained")
                else ""
            )
        )
    pdfs = stages.get("pdfs") or {}
    if pdfs:
        lines.append(
            f"PDFs: {pdfs.get('downloaded', 0):,} downloaded, {pdfs.get('extracted', 0):,} read, "
            f"{pdfs.get('references', 0):,} references ({pdfs.get('matched', 0):,} matched to "
            "papers in the db)"
        )
    graph = stages.get("graph") or {}
    if graph:
        lines.append(
            f"Citation graph: {graph.get('nodes', 0):,} nodes, {graph.get('edges', 0):,} edges"
        )
    propose = stages.get("propose") or {}
    if propose:
        relevant = f" ({propose['relevant']:,} relevant)" if "relevant" in propose else ""
        lines.append(
            f"Proposals: {propose.get('unreviewed', 0):,} unreviewed candidates{relevant}, top "
            f"{propose.get('listed', 0)} below"
        )
    if demo:
        lines.append("Demo run: bundled snapshot, offline (no PDFs, no citation services)")
    return lines


def _code(text: str) -> str:
    """Text inside a Markdown code span, which a backtick would close."""
    return str(text).replace("`", "'")


def digest_markdown(
    title: str,
    summary: list[str],
    rows: list[tuple[str, int]],
    svg_name: str,
    proposals: list[dict],
    leaf_names: dict[str, str],
    chart_title: str = "Proposals per pillar",
) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- {line}" for line in summary] + [""]
    lines += ["## Proposals per pillar", "", f"![{chart_title}]({svg_name})", ""]
    biggest = max((count for _, count in rows), default=0) or 1
    lines += ["| Pillar | Proposals | |", "|---|---:|---|"]
    lines += [
        f"| {md_text(name)} | {count} | {'█' * round(20 * count / biggest)} |"
        for name, count in rows
    ]
    lines += ["", "## Top proposals", ""]
    if not proposals:
        lines.append("Nothing to propose: every paper is reviewed or already in the survey.")
    for number, item in enumerate(proposals, 1):
        link = item.get("link")
        title_text = (
            f"[{md_text(item['title'])}]({md_url(link)})" if link else md_text(item["title"])
        )
        leaf = item.get("leaf")
        where = (
            f" · suggested leaf: {md_text(leaf_names.get(leaf, leaf))} (`{_code(leaf)}`)"
            if leaf
            else ""
        )
        score = f"score {item['score']:.2f}" if isinstance(item.get("score"), (int, float)) else ""
        lines.append(f"{number}. **{title_text}** — `{_code(item['id'])}` · {score}{where}")
        lines += [f"    - {md_text(reason)}" for reason in item.get("reasons") or []]
    lines += [
        "",
        "Review with `evla triage`, or `evla review ID --accept --category NODE` / `--reject`.",
        "",
    ]
    return "\n".join(lines)


def digest_html(
    title: str, summary: list[str], svg: str, proposals: list[dict], leaf_names: dict[str, str]
) -> str:
    esc = html.escape
    items = []
    for item in proposals:
        link = item.get("link")
        name = f'<a href="{esc(link)}">{esc(item["title"])}</a>' if link else esc(item["title"])
        leaf = item.get("leaf")
        reasons = "".join(f"<li>{esc(r)}</li>" for r in item.get("reasons") or [])
        score = f"{item['score']:.2f}" if isinstance(item.get("score"), (int, float)) else "-"
        items.append(
            f"<li><strong>{name}</strong> <code>{esc(item['id'])}</code> · score {score}"
            + (
                f" · suggested leaf: {esc(leaf_names.get(leaf, leaf))} (<code>{esc(leaf)}</code>)"
                if leaf
                else ""
            )
            + f"<ul>{reasons}</ul></li>"
        )
    body = (
        "".join(items)
        if items
        else "<p>Nothing to propose: every paper is reviewed or already in the survey.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;\
line-height:1.4}}
li{{margin:.4rem 0}} ul ul{{color:#444;font-size:.92em}} \
code{{background:#f3f3f3;padding:0 .2em}}</style>
</head><body>
<h1>{esc(title)}</h1>
<ul>{"".join(f"<li>{esc(line)}</li>" for line in summary)}</ul>
<h2>Proposals per pillar</h2>
{svg}
<h2>Top proposals</h2>
<ol>{body}</ol>
<p>Review with <code>evla triage</code>, or \
<code>evla review ID --accept --category NODE</code> / <code>--reject</code>.</p>
</body></html>
"""


def write_digest(
    db: sqlite_utils.Database,
    run_id: int,
    stages: dict,
    proposals: list[dict],
    directory: Path,
    demo: bool = False,
    charted: list[dict] | None = None,
    chart_title: str | None = None,
) -> dict[str, Path]:
    """Write ``weekly-<date>.md``, ``.html`` and ``-pillars.svg`` (a re-run the same day
    replaces them) and copies named ``latest.*``; returns the paths by kind.

    The chart counts ``charted`` per pillar (default: the listed ``proposals``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    day = now_iso()[:10]
    title = f"evla-miner weekly digest, {day} (run {run_id})"
    charted = proposals if charted is None else charted
    rows = proposals_per_pillar(db, charted)
    chart_title = chart_title or f"Top {len(proposals)} proposals per pillar"
    svg = bar_chart_svg(rows, chart_title)
    leaf_names = {row["id"]: row["name"] for row in db.query("select id, name from taxonomy")}
    summary = _summary_lines(stages, demo)
    stem = f"weekly-{day}"
    svg_path = directory / f"{stem}-pillars.svg"
    svg_path.write_text(svg + "\n", encoding="utf-8")
    md_path = directory / f"{stem}.md"
    md_path.write_text(
        digest_markdown(title, summary, rows, svg_path.name, proposals, leaf_names, chart_title),
        encoding="utf-8",
    )
    html_path = directory / f"{stem}.html"
    page = digest_html(title, summary, svg, proposals, leaf_names)
    html_path.write_text(page, encoding="utf-8")
    (directory / "latest-pillars.svg").write_text(svg + "\n", encoding="utf-8")
    (directory / "latest.md").write_text(
        digest_markdown(
            title, summary, rows, "latest-pillars.svg", proposals, leaf_names, chart_title
        ),
        encoding="utf-8",
    )
    (directory / "latest.html").write_text(page, encoding="utf-8")
    return {"markdown": md_path, "html": html_path, "svg": svg_path}
