"""The survey's own knowledge: its taxonomy and the papers it already contains.

Both are data under ``seeds/`` (``taxonomy.toml``, ``seed_papers.jsonl``), so
another survey can use evla-miner by replacing them. ``init_db`` loads them
idempotently: running it again changes nothing, and editing the taxonomy file
then re-running it brings the db in line with the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils

from ..core.db import dumps, now_iso
from ..core.errors import BadInput
from ..core.records import RecordError, paper_from_snapshot, synthetic_id, upsert_papers
from ..core.settings import SEED_PAPERS_FILE
from ..core.taxonomy import TAXONOMY_FILE, load_taxonomy


def load_seed_papers(path: Path, known_labels: set[str]) -> list[tuple[dict, list[str], str]]:
    """Seed papers as (paper row, labels, label source). Unknown labels are an error:
    a typo in the seeds would silently train the classifier on a class that does not exist."""
    seeds = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise BadInput(f"seed papers file not found: {path}") from exc
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{line_number}: invalid JSON ({exc.msg})") from exc
        labels = record.get("labels") or []
        unknown = [label for label in labels if label not in known_labels]
        if unknown:
            raise BadInput(f"{path}:{line_number}: unknown taxonomy ids {unknown}")
        if not record.get("id"):
            record = {**record, "id": None}
        try:
            if record["id"]:
                paper = paper_from_snapshot(record, source="seed")
            else:
                paper = paper_from_snapshot({**record, "id": "0000.00000"}, source="seed")
                paper["id"] = synthetic_id(record.get("title"))
        except RecordError as exc:
            raise BadInput(f"{path}:{line_number}: {exc}") from exc
        seeds.append((paper, labels, record.get("label_source") or "seed"))
    return seeds


def init_db(db: sqlite_utils.Database, seeds: Path) -> dict:
    """Load taxonomy and seed papers into an (already migrated) db. Idempotent."""
    taxonomy = load_taxonomy(seeds / TAXONOMY_FILE)
    seed_papers = load_seed_papers(seeds / SEED_PAPERS_FILE, {node["id"] for node in taxonomy})
    with db.conn:
        db.execute("delete from taxonomy")
        db.table("taxonomy").insert_all(taxonomy, pk="id")
    paper_counts = upsert_papers(db, [paper for paper, _, _ in seed_papers])
    existing = {row["paper_id"]: row for row in db["survey"].rows}
    survey_rows = []
    for paper, labels, label_source in seed_papers:
        row = existing.get(paper["id"])
        if row and not row["source"].startswith("seed:"):
            continue  # a reviewer's decision about this paper wins over the seed file
        wanted = {
            "paper_id": paper["id"],
            "labels": dumps(labels),
            "source": f"seed:{label_source}",
        }
        if row and all(row[k] == v for k, v in wanted.items()):
            continue
        survey_rows.append({**wanted, "added_at": row["added_at"] if row else now_iso()})
    with db.conn:
        db.table("survey").upsert_all(survey_rows, pk="paper_id")
        db.execute("delete from seed_labels")
        db.table("seed_labels").insert_all(
            [
                {"paper_id": p["id"], "labels": dumps(labels), "label_source": source}
                for p, labels, source in seed_papers
            ],
            pk="paper_id",
        )
    return {
        "taxonomy_nodes": len(taxonomy),
        "leaves": sum(node["is_leaf"] and node["level"] != "auxiliary" for node in taxonomy),
        "seed_papers": len(seed_papers),
        "papers_inserted": paper_counts["inserted"],
        "survey_rows_changed": len(survey_rows),
    }
