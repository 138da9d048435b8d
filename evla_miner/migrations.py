"""The database schema, as an ordered list of named migrations.

Every schema change is a new ``mNNN_verb_noun`` function appended at the end;
an applied migration is never edited (sqlite-utils records each applied name in
``_sqlite_migrations``). ``evla_miner.db.open_db`` applies pending ones on open,
so any code holding a ``Database`` sees the current schema.
"""

from sqlite_utils import Migrations

migrations = Migrations("evla_miner")


@migrations()
def m001_create_core_tables(db):
    db["papers"].create(
        {
            "id": str,  # versionless arXiv id (e.g. 2406.04339, hep-th/9901001)
            "version": int,  # latest version seen
            "versions": str,  # JSON [{"version": "v1", "created": ISO date}, ...]
            "title": str,
            "authors": str,  # one string, as in the snapshot
            "authors_parsed": str,  # JSON [[last, first, suffix], ...]
            "abstract": str,
            "categories": str,  # space separated, primary first
            "primary_category": str,
            "cross_list": int,  # 1 when the paper was harvested through a non-primary category
            "published": str,  # ISO date of v1
            "updated": str,  # ISO date of the latest version
            "doi": str,
            "journal_ref": str,
            "comments": str,
            "report_no": str,
            "license": str,
            "pdf_url": str,
            "source": str,  # where the record came from: snapshot:<file>, arxiv-api, seed, reference
            "first_seen": str,
            "last_seen": str,
        },
        pk="id",
    )
    db["papers"].create_index(["published"])
    db["taxonomy"].create(
        {
            "id": str,
            "name": str,
            "description": str,
            "parent": str,
            "level": str,  # pillar | category | subcategory | auxiliary
            "is_leaf": int,
            "position": int,
        },
        pk="id",
    )
    db["survey"].create(
        {
            "paper_id": str,
            "labels": str,  # JSON list of taxonomy ids
            "source": str,  # seed:<label_source> | review:<reviewer>
            "added_at": str,
        },
        pk="paper_id",
    )
    db["runs"].create(
        {
            "id": int,
            "kind": str,  # snapshot | arxiv | pdf | classify | graph | weekly ...
            "started": str,
            "finished": str,
            "status": str,  # running | ok | failed | interrupted
            "params": str,  # JSON
            "counts": str,  # JSON
            "errors": str,  # JSON list of {"line"/"id", "reason"}
            "message": str,
        },
        pk="id",
    )
    db["decisions"].create(
        {
            "id": int,
            "paper_id": str,
            "decision": str,  # accept | reject | undo
            "categories": str,  # JSON list of taxonomy ids
            "note": str,
            "reviewer": str,
            "decided_at": str,
        },
        pk="id",
    )
    db["decisions"].create_index(["paper_id"])
    db["embeddings"].create(
        {"model": str, "content_hash": str, "dim": int, "vector": bytes, "created": str},
        pk=("model", "content_hash"),
    )
    db["scores"].create(
        {
            "paper_id": str,
            "model": str,  # classifier artefact id that produced the score
            "relevance": float,
            "categories": str,  # JSON [{"id", "score"}, ...] best first
            "unsure": int,
            "explanation": str,  # JSON
            "scored_at": str,
        },
        pk="paper_id",
    )
    db["references"].create(
        {
            "id": int,
            "paper_id": str,  # the citing paper
            "position": int,
            "raw": str,
            "arxiv_id": str,
            "doi": str,
            "title": str,
            "year": int,
            "authors": str,  # JSON list
            "matched_id": str,  # paper id in the db, when matched
            "match_method": str,  # arxiv_id | doi | title | None
        },
        pk="id",
    )
    db["references"].create_index(["paper_id"])
    db["bibtex_keys"].create(
        {"paper_id": str, "key": str, "assigned_at": str}, pk="paper_id"
    )
    db["bibtex_keys"].create_index(["key"], unique=True)
