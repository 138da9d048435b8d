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
            # where the record came from: snapshot:<file>, arxiv-api, seed, reference
            "source": str,
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
    db["bibtex_keys"].create({"paper_id": str, "key": str, "assigned_at": str}, pk="paper_id")
    db["bibtex_keys"].create_index(["key"], unique=True)


@migrations()
def m050_graph_create_edges(db):
    """Citation graph storage (evla_miner.graph, evla_miner.citations)."""
    # One row per citation: source (citing node) -> target (cited node), per origin
    # (references = extracted from PDFs, s2 / openalex = citation APIs).
    db["edges"].create(
        {"source": str, "target": str, "origin": str, "created": str},
        pk=("source", "target", "origin"),
    )
    db["edges"].create_index(["target"])
    # Cited works that are not in `papers`: the graph's stub nodes.
    db["graph_nodes"].create(
        {
            "id": str,  # arXiv id when known, else doi:<doi>, s2:<sha>, openalex:<W..>, title:<key>
            "title": str,
            "year": int,
            "arxiv_id": str,
            "doi": str,
            "s2_id": str,
            "openalex_id": str,
            "authors": str,  # JSON list
            "updated": str,
        },
        pk="id",
    )
    # Influence signals per node, recomputed by every `evla graph`.
    db["influence"].create(
        {
            "node_id": str,
            "in_corpus": int,  # 1 = a paper in `papers`, 0 = stub
            "corpus_citations": int,
            "survey_citations": int,
            "recent_citations": int,
            "pagerank": float,
            "survey_pagerank": float,  # personalised PageRank seeded by the survey's papers
            "cocited_survey": int,  # distinct survey papers cited together with this node
            "cocitations": int,  # total co-citations with survey papers
            "computed_at": str,
        },
        pk="node_id",
    )
    # Raw API responses with their fetch time, so re-runs cost no requests.
    db["citation_cache"].create(
        {"service": str, "key": str, "url": str, "status": int, "body": str, "fetched_at": str},
        pk=("service", "key"),
    )


@migrations()
def m080_harvest_create_arxiv_state(db):
    # Live arXiv harvest. One row per (run, query, date window): how far paging
    # got, committed after every page, so a killed run resumes where it stopped.
    db["harvest_slices"].create(
        {
            "id": int,
            "run_id": int,
            "query_name": str,
            "query": str,
            "window_from": str,  # ISO datetime (UTC), inclusive
            "window_to": str,  # ISO datetime (UTC), inclusive
            "total": int,  # arXiv's totalResults for the window, once known
            "next_start": int,  # offset of the next page to fetch
            "records": int,
            "pages": int,
            "status": str,  # pending | done | split | flagged | capped
            "note": str,
        },
        pk="id",
    )
    db["harvest_slices"].create_index(["run_id"])
    # Per query: everything submitted before ``until`` has been harvested.
    db["harvest_watermarks"].create(
        {"query": str, "query_name": str, "until": str, "run_id": int, "updated": str}, pk="query"
    )


@migrations()
def m090_review_create_triage_skips(db):
    # `evla triage`: papers a reviewer skipped, so the next session starts with
    # the papers they have not seen yet and comes back to the skipped ones last.
    db["triage_skips"].create(
        {"paper_id": str, "reviewer": str, "skipped_at": str}, pk=("paper_id", "reviewer")
    )


@migrations()
def m020_pdf_create_pdfs(db):
    # One row per paper whose PDF the pdf stage has tried (evla_miner.pdfs): the
    # download (file, sha256, failures with their reason and attempt count, retried
    # on the next run) and the extraction (full text, sections as offsets into it).
    db["pdfs"].create(
        {
            "paper_id": str,
            "version": int,  # the arXiv version downloaded
            "path": str,  # relative to the db directory: pdfs/<id>v<N>.pdf
            "url": str,
            "sha256": str,
            "size": int,  # bytes
            "status": str,  # downloaded | extracted | failed
            "stage": str,  # where the last failure happened: download | extract
            "error": str,  # one line, or NULL
            "attempts": int,  # failed attempts since the last success
            "pages": int,
            "text": str,  # full text in reading order
            "sections": str,  # JSON [{name, heading, page, start, end}] offsets into text
            "reference_source": str,  # heading | numbered-list | none
            "references": int,  # entries written to `references`
            "downloaded_at": str,
            "extracted_at": str,
            "updated": str,
        },
        pk="paper_id",
    )
    db["pdfs"].create_index(["status"])


@migrations()
def m100_seeds_create_seed_labels(db):
    # The survey's seed file as this database loaded it (`evla init`): each seed paper's
    # labels, so undoing a reviewer's accept of a seed paper restores the seed row from
    # the database itself, not from whatever seeds directory happens to be the default.
    db["seed_labels"].create({"paper_id": str, "labels": str, "label_source": str}, pk="paper_id")
    db.execute(
        """insert into seed_labels (paper_id, labels, label_source)
           select paper_id, labels, substr(source, 6) from survey where source like 'seed:%'"""
    )


@migrations()
def m110_runs_add_process(db):
    # Which process runs a job (pid and host), so a run whose process was killed is
    # closed as `interrupted` by the next run instead of staying `running` forever.
    db["runs"].add_column("pid", int)
    db["runs"].add_column("host", str)


@migrations()
def m120_harvest_reconcile_windows(db):
    # The ids each harvest slice has received so far, committed with every page, so a
    # stale or short page (arXiv serving the previous page again, or fewer entries than
    # asked) is noticed even after a resume, and a window counts as complete only when
    # it holds as many distinct papers as arXiv's totalResults. ``gaps`` lists the
    # offsets whose pages stayed incomplete after the re-requests (JSON), for the flag.
    db["harvest_slice_ids"].create({"slice_id": int, "paper_id": str}, pk=("slice_id", "paper_id"))
    db["harvest_slices"].add_column("gaps", str)


@migrations()
def m130_venues_create(db):
    # Where each paper was published, one row per source that says so (core.venues):
    # bib:<file> (the survey's own .bib), arxiv:journal-ref, arxiv:comments, s2, openalex.
    db["venues"].create(
        {
            "paper_id": str,
            "source": str,
            "name": str,  # as the source writes it
            "short": str,  # known venue abbreviation (CoRL, RA-L), or NULL
            "kind": str,  # conference | journal
            "year": int,
            "evidence": str,  # the text or service record the venue came from
            "doi": str,  # the published version's DOI, when the source gives one
            "recorded_at": str,
        },
        pk=("paper_id", "source"),
    )


@migrations()
def m131_survey_bib_create(db):
    # The survey's own .bib (`evla survey import`): every entry, matched or not, so an
    # unmatched one is matched when a later harvest brings its paper, and exported back
    # unchanged so no \cite breaks.
    db["survey_bib"].create(
        {
            "file": str,  # file name (no directory): the survey source is bib:<file>
            "key": str,  # the authors' citation key
            "entry_type": str,
            "fields": str,  # JSON {field: value} as parsed
            "labels": str,  # JSON list of taxonomy ids from --labels-from / % evla:
            "matched_id": str,
            "method": str,  # arxiv | doi | title | NULL (unmatched)
            "score": float,
            "reason": str,  # why it is unmatched
            "position": int,  # order in the file
            "imported_at": str,
            "matched_at": str,
        },
        pk=("file", "key"),
    )
    db["survey_bib"].create_index(["matched_id"])
    # Keys the authors use are pinned: the export keeps them whatever the tool would generate.
    db["bibtex_keys"].add_column("pinned_by", str)


@migrations()
def m132_export_create_bibtex_validated(db):
    # BibTeX entry texts (sha256) that bibtexparser parsed back exactly: the same text
    # always parses the same way, so a re-export does not pay the parse again (it was
    # ~90% of a 10,000-entry export).
    db["bibtex_validated"].create({"sha256": str, "validated_at": str}, pk="sha256")


@migrations()
def m150_backfill_create_progress(db):
    # `evla backfill`: how far each backfill (one snapshot file + its filters) got. A chunk's
    # papers, vectors and scores are committed before its row moves, so a killed backfill
    # resumes after `line` (seeking to `offset`, a position in the uncompressed stream).
    db["backfill_progress"].create(
        {
            "key": str,  # sha256 of the file's path, size and the filters
            "file": str,
            "size": int,  # bytes on disk when the backfill started
            "params": str,  # JSON {categories, since, until}
            "line": int,  # last line whose chunk is committed
            "offset": int,  # byte offset just after that line (uncompressed)
            "counts": str,  # JSON counts over every run of this backfill
            "status": str,  # running | done
            "run_id": int,  # the run that last moved the row
            "started": str,
            "updated": str,
            "finished": str,
        },
        pk="key",
    )
