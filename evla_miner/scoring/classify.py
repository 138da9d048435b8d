"""Classify stage: how relevant each paper is to the survey, where it would go in the
taxonomy, and why.

``score_papers`` scores every paper of a database that has no score from the current
model. The current model is the shipped one (``models/``, trained on the seed files)
until reviewers decide: then ``current_model`` retrains on the files plus the
decisions in force and keeps that model beside the database (``<db dir>/models/``),
never touching ``models/``. ``predict_records`` scores records of a file without a
database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import sqlite_utils

from ..core.db import db_dir, dumps, now_iso
from ..core.progress import Reporter
from ..core.runs import recorded_run
from ..core.settings import ClassifySettings, models_dir, seeds_dir
from ..core.taxonomy import Taxonomy
from .embed import (
    Embedder,
    VectorStore,
    embed_texts,
    embedder_from_settings,
    paper_text,
    preseed_cache,
    vectors_for,
)
from .model import RELEVANT, ClassifierModel, fit_model, load_model, model_directories, save_model
from .training import (
    TrainingSet,
    apply_decisions,
    decisions_fingerprint,
    decisions_in_force,
    prepare,
    record_id,
    training_examples,
)


def local_models_dir(db: sqlite_utils.Database) -> Path:
    """Where a db's retrained model lives (beside the database, never in ``models/``)."""
    return db_dir(db) / "models"


def training_set(
    db: sqlite_utils.Database | None,
    embedder: Embedder,
    seeds: Path | None = None,
    store: VectorStore | None = None,
    decisions: dict | None = None,
    reporter: Reporter | None = None,
) -> TrainingSet:
    """The seed files plus ``decisions`` (which win), embedded, over the db's taxonomy."""
    seeds = Path(seeds or seeds_dir())
    examples = training_examples(seeds)
    if decisions:
        assert db is not None, "decisions come from a database"
        examples = apply_decisions(db, examples, decisions)
    return prepare(examples, Taxonomy.of(db, seeds), embedder, db, store, reporter)


def train(
    db: sqlite_utils.Database | None,
    embedder: Embedder,
    seeds: Path | None = None,
    store: VectorStore | None = None,
    decisions: dict | None = None,
    reporter: Reporter | None = None,
    training: TrainingSet | None = None,
) -> tuple[ClassifierModel, TrainingSet]:
    """Train a model from the seed files plus ``decisions``; returns the model and the
    training set it was fitted on (so ``evla train`` can ship its vectors)."""
    reporter = reporter or Reporter()
    training = training or training_set(db, embedder, seeds, store, decisions, reporter)
    examples = training.examples
    reporter.note(
        f"training on {len(examples):,} papers ({sum(e.positive for e in examples)} relevant)"
    )
    model = fit_model(training, embedder.model_id)
    model.meta["decisions"] = decisions_fingerprint(decisions or {})
    model.meta["decision_count"] = len(decisions or {})
    return model, training


def current_model(
    db: sqlite_utils.Database,
    embedder: Embedder,
    reporter: Reporter | None = None,
    store: VectorStore | None = None,
    shipped: Path | None = None,
) -> tuple[ClassifierModel, bool]:
    """The model to score with, retraining first when decisions changed since the
    model was trained. Returns (model, retrained)."""
    reporter = reporter or Reporter()
    shipped = Path(shipped or models_dir())
    decisions = decisions_in_force(db)
    wanted = decisions_fingerprint(decisions)
    for directory in model_directories(db_dir(db), shipped):
        model = load_model(directory)
        if (
            model is not None
            and model.embedder_id == embedder.model_id
            and model.meta.get("decisions") == wanted
        ):
            return model, False
    if store is None:
        store = VectorStore.load(shipped)
    reporter.note(
        f"retraining: {len(decisions)} reviewer decisions differ from the current model's"
    )
    model, _ = train(db, embedder, store=store, decisions=decisions, reporter=reporter)
    save_model(model, local_models_dir(db), {"trained_at": now_iso()})
    return model, True


def score_papers(
    db: sqlite_utils.Database,
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
    batch_size: int = 512,
    rescore: bool = False,
    shipped: Path | None = None,
    settings: ClassifySettings | None = None,
) -> dict:
    """Score every paper without a score from the current model (retraining first
    when reviewer decisions changed), as one ``classify`` run. Returns counts.

    ``embedder``: default the one ``settings`` (the ``[classify]`` section) names."""
    reporter = reporter or Reporter()
    embedder = embedder or embedder_from_settings(settings)
    shipped = Path(shipped or models_dir())
    params = {"embedder": embedder.model_id, "rescore": rescore}
    with recorded_run(db, "classify", params, {"scored": 0}) as run:
        store = VectorStore.load(shipped)
        model, retrained = current_model(db, embedder, reporter, store, shipped)
        run.counts.update(model=model.model_id, retrained=retrained)
        run.checkpoint()
        where = "" if rescore else "where id not in (select paper_id from scores where model = ?)"
        rows = list(
            db.query(
                f"select id, title, abstract from papers {where} order by id",
                [] if rescore else [model.model_id],
            )
        )
        texts = [paper_text(r["title"], r["abstract"]) for r in rows]
        preseeded = preseed_cache(db, texts, embedder.model_id, store)
        vectors = vectors_where_needed(
            model, texts, lambda some: embed_texts(db, some, embedder, reporter=reporter)
        )
        run.counts["past_gate"] = int(np.count_nonzero(vectors.any(axis=1)))
        if rows:
            reporter.start(f"scoring {len(rows):,} papers", total=len(rows))
        scored_at = now_iso()
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            store_scores(
                db,
                score_rows(
                    model,
                    [r["id"] for r in chunk],
                    texts[start : start + batch_size],
                    vectors[start : start + batch_size],
                    scored_at,
                ),
            )
            run.counts["scored"] += len(chunk)
            run.checkpoint()
            reporter.advance(len(chunk))
        reporter.finish()
        relevant = db.execute(
            "select count(*) from scores where model = ? and relevance >= ?",
            [model.model_id, RELEVANT],
        ).fetchone()[0]
        run.counts.update(embeddings_from_shipped_store=preseeded, relevant=relevant)
    return {"run_id": run.id, **run.counts}


def vectors_where_needed(
    model: ClassifierModel, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """One row per text, at ``shipped_precision``: embedded (by ``embed``) only where
    ``model.needs_vectors``, zeros elsewhere. Most papers of a week are plainly off-topic
    and their words say so, so most of a classify run's embedding is skipped."""
    dim = model.reference["vectors"].shape[1]
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not len(texts):
        return out
    rows = np.flatnonzero(model.needs_vectors(texts))
    if len(rows):
        out[rows] = shipped_precision(embed([texts[int(i)] for i in rows]))
    return out


def shipped_precision(vectors: np.ndarray) -> np.ndarray:
    """Vectors rounded through float16, the precision of the shipped store, before scoring:
    a paper scores the same whether its vector came from the store or from the model."""
    return np.asarray(vectors).astype(np.float16).astype(np.float32)


def score_rows(
    model: ClassifierModel,
    ids: list[str],
    texts: list[str],
    vectors: np.ndarray,
    scored_at: str,
) -> list[dict]:
    """``scores`` rows for papers (``vectors`` already at ``shipped_precision``). Needs no
    database, so a distributed worker computes exactly what ``score_papers`` stores."""
    predictions = model.predict(texts, vectors, ids=ids)
    return [
        {
            "paper_id": paper_id,
            "model": model.model_id,
            "relevance": p["relevance"],
            "categories": dumps(p["categories"]),
            "unsure": p["unsure"],
            "explanation": dumps(p["explanation"]),
            "scored_at": scored_at,
        }
        for paper_id, p in zip(ids, predictions, strict=True)
    ]


def store_scores(db: sqlite_utils.Database, rows: list[dict]) -> None:
    """Write ``score_rows`` output in one transaction (a paper keeps one score row)."""
    if rows:
        with db.conn:
            db.table("scores").upsert_all(rows, pk="paper_id")


def predict_records(
    records: Iterable[dict],
    model: ClassifierModel,
    embedder: Embedder,
    store: VectorStore | None = None,
    reporter: Reporter | None = None,
) -> list[dict]:
    """Predictions for arXiv-snapshot records, in input order, without touching a db.

    Records missing an id, abstract or categories are scored from what they have.
    """
    records = [r if isinstance(r, dict) else {} for r in records]
    texts = [paper_text(r.get("title"), r.get("abstract")) for r in records]
    vectors = vectors_where_needed(
        model, texts, lambda some: vectors_for(some, embedder, None, store, reporter)
    )
    ids = [record_id(r) for r in records]
    return [
        {"id": paper_id, **{k: p[k] for k in ("relevance", "categories", "explanation", "unsure")}}
        for paper_id, p in zip(ids, model.predict(texts, vectors, ids=ids), strict=True)
    ]
