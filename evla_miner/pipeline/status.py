"""What is in the database and what is waiting: the numbers behind ``evla status``.

Looking is also when runs killed with SIGKILL (or lost with their machine's power) are
closed: a ``running`` row whose process is gone from this host becomes ``interrupted``
(``core.runs.close_abandoned``), so the status never shows a dead job as running.
"""

from __future__ import annotations

import sqlite_utils

from ..core.db import loads
from ..core.runs import close_abandoned

COUNTED_TABLES = (
    "papers",
    "survey",
    "taxonomy",
    "decisions",
    "embeddings",
    "scores",
    "references",
    "bibtex_keys",
    "edges",  # citation graph (evla graph)
    "graph_nodes",  # cited works outside the db
    "pdfs",  # PDFs downloaded/read (evla pdf)
)


TABLE_LABELS = {
    "edges": "edges (citation graph)",
    # not the graph's node count: the graph is every paper in the db plus these
    "graph_nodes": "graph_nodes (cited works outside the db)",
}
STAGE_KEYS = {
    "init": (),
    "harvest": ("inserted", "updated", "bad"),
    "classify": ("scored",),
    "pdfs": ("downloaded", "extracted", "download_failed", "extract_failed"),
    "graph": ("nodes", "edges"),
    "propose": ("unreviewed", "relevant", "listed"),
    "digest": (),
}
STAGE_WORDS = {"inserted": "new", "download_failed": "failed downloads"}
SHOWN_WHEN_ZERO = {"inserted", "edges"}  # "0 new" and "0 edges" are news, not noise


def _number(key: str, value, words: dict | None = None) -> str:
    label = (words or {}).get(key, key)
    return f"{label} {value:,}" if isinstance(value, int) else f"{label} {value}"


def summarize_counts(counts: dict) -> str:
    """A run's counts in one short line for the runs table.

    Why: a weekly run's counts are one dict per stage, which the table used to
    print as raw Python dicts over 40 lines. Nested stages become
    ``stage: a 1, b 2`` with the few numbers that matter for that stage.
    """
    flat = [_number(k, v) for k, v in counts.items() if v and not isinstance(v, dict)]
    parts = [", ".join(flat)] if flat else []
    order = list(STAGE_KEYS)
    stages = sorted(
        ((k, v) for k, v in counts.items() if isinstance(v, dict)),
        key=lambda item: order.index(item[0]) if item[0] in order else len(order),
    )
    for stage, values in stages:
        keys = STAGE_KEYS.get(stage)
        if keys is None:
            keys = tuple(k for k, v in values.items() if isinstance(v, int) and k != "run_id")[:3]
        shown = [
            _number(k, values[k], STAGE_WORDS)
            for k in keys
            if values.get(k) or (k in SHOWN_WHEN_ZERO and k in values)
        ]
        if shown:
            parts.append(f"{stage}: {', '.join(shown)}")
    return "; ".join(parts)


def latest_graph(db: sqlite_utils.Database) -> dict | None:
    """Nodes and edges of the latest citation graph build (by `evla graph` or the weekly
    job), which is what "how big is the graph" means; ``graph_nodes`` only counts stubs."""
    for row in db.query(
        "select id, kind, counts from runs where status = 'ok' and kind in ('graph', 'weekly') "
        "order by id desc"
    ):
        counts = loads(row["counts"], {})
        graph = counts if row["kind"] == "graph" else counts.get("graph")
        if graph and "nodes" in graph:
            return {"run_id": row["id"], "nodes": graph["nodes"], "edges": graph.get("edges", 0)}
    return None


def database_status(db: sqlite_utils.Database, last_runs: int = 5) -> dict:
    """Counts per table, the latest runs, the latest citation graph, pending work per
    stage, and the ids of the abandoned runs this call closed as ``interrupted``
    (``closed_abandoned``)."""
    closed = close_abandoned(db)
    counts = {name: db[name].count for name in COUNTED_TABLES if db[name].exists()}
    runs = [
        {
            "id": row["id"],
            "kind": row["kind"],
            "started": row["started"],
            "finished": row["finished"],
            "status": row["status"],
            "counts": loads(row["counts"], {}),
            "errors": len(loads(row["errors"], [])),
            "message": row["message"],
        }
        for row in db.query("select * from runs order by id desc limit ?", [last_runs])
    ]
    pending = {
        "unscored papers": db.execute(
            "select count(*) from papers where id not in (select paper_id from scores)"
        ).fetchone()[0],
        "unreviewed papers outside the survey": db.execute(
            """select count(*) from papers
               where id not in (select paper_id from survey)
                 and id not in (select paper_id from decisions)"""
        ).fetchone()[0],
    }
    return {
        "counts": counts,
        "runs": runs,
        "pending": pending,
        "graph": latest_graph(db),
        "closed_abandoned": closed,
    }
