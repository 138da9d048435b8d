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


def database_status(db: sqlite_utils.Database, last_runs: int = 5) -> dict:
    """Counts per table, the latest runs, pending work per stage, and the ids of the
    abandoned runs this call closed as ``interrupted`` (``closed_abandoned``)."""
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
    return {"counts": counts, "runs": runs, "pending": pending, "closed_abandoned": closed}
