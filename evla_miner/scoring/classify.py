"""Classify stage: how relevant each paper is to the survey, where it would go in
the taxonomy, and why.

The model (``ClassifierModel``) is trained from three sources:

* the survey's papers (``seeds/seed_papers.jsonl``): positives, with taxonomy labels;
* the training stream (``seeds/training/*.jsonl.gz`` + ``*.positives.jsonl``):
  10k real arXiv records where curated efficient-VLA papers are positive and the
  rest negative;
* reviewer decisions (``decisions``): the latest non-undone decision per paper
  wins; accept = positive with its categories, reject = negative. They override
  the files.

``models/`` ships a model trained on the files alone plus the embeddings of
their texts, so a fresh install scores its first week in minutes. When
reviewers have decided since, ``score_papers`` retrains first and keeps that
model beside the database (``<db dir>/models/``), never touching ``models/``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Sequence

import joblib
import numpy as np
import sqlite_utils

from ..core import decisions as review
from ..core.settings import load_config, models_dir, seeds_dir
from ..core.db import db_dir, dumps, loads, now_iso, papers_by_id
from .embed import VectorStore, embed_texts, embedder_from_config, paper_text, preseed_cache
from ..core.errors import BadInput
from .estimators import PaperSet, RelevanceClassifier, TaxonomyClassifier
from ..core.progress import Reporter
from ..core.records import RecordError, parse_date, split_arxiv_id
from ..ingest.seeds import TAXONOMY_FILE, SEED_PAPERS_FILE, load_taxonomy, synthetic_id

MODEL_FILE = "classifier.joblib"
META_FILE = "training.json"
TRAINING_DIR = "training"
RELEVANT = 0.5  # relevance at which a paper counts as relevant (unsure flag, proposals)
UNSURE_BELOW = 0.25  # a relevant paper whose best leaf scores below this fits no leaf
# Bump when a change to the estimators changes what a model trained on the same data
# predicts (2: taxonomy prior in words; relevance calibrated on stream rows only).
MODEL_VERSION = 2
NEAREST = 3
TERMS = 8


# --- training data -------------------------------------------------------------------


@dataclass
class Example:
    """One labelled paper: text, relevance label, taxonomy labels (may be empty)."""

    id: str
    text: str
    positive: bool
    labels: list = field(default_factory=list)
    published: date | None = None
    title: str = ""
    source: str = ""  # seed | stream | decision
    in_stream: bool = False  # the record is part of the training stream


def _record_id(record: dict) -> str | None:
    try:
        return split_arxiv_id(str(record.get("id")))[0] if record.get("id") else None
    except RecordError:
        return str(record.get("id"))


def _record_published(record: dict) -> date | None:
    try:
        versions = record.get("versions") or []
        if versions:
            return parse_date(versions[0].get("created"))
        return parse_date(record.get("update_date"))
    except RecordError:
        return None


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def training_examples(seeds: Path | None = None) -> list[Example]:
    """Seeds + training stream as examples (one per paper id, seeds' labels merged in).

    A seed that also appears in the stream is one example: positive, with the
    seed's labels and the earlier of the two dates.
    """
    seeds = Path(seeds or seeds_dir())
    examples: dict[str, Example] = {}
    training = seeds / TRAINING_DIR
    streams = sorted(training.glob("*.jsonl.gz")) + sorted(
        p for p in training.glob("*.jsonl") if not p.name.endswith(".positives.jsonl")
    )
    for stream in streams:
        positives_file = stream.with_name(stream.name.replace(".jsonl.gz", "").replace(".jsonl", "") + ".positives.jsonl")
        positives = {row["id"] for row in read_jsonl(positives_file)} if positives_file.exists() else set()
        for record in read_jsonl(stream):
            paper_id = _record_id(record)
            if not paper_id:
                continue
            examples[paper_id] = Example(
                id=paper_id,
                text=paper_text(record.get("title"), record.get("abstract")),
                positive=paper_id in positives,
                published=_record_published(record),
                title=" ".join((record.get("title") or "").split()),
                source="stream",
                in_stream=True,
            )
    for record in read_jsonl(seeds / SEED_PAPERS_FILE):
        paper_id = _record_id(record) or synthetic_id(record.get("title"))
        published = _record_published(record)
        existing = examples.get(paper_id)
        if existing:
            existing.positive = True
            existing.labels = list(record.get("labels") or [])
            existing.source = "seed"
            if published and (existing.published is None or published < existing.published):
                existing.published = published
            continue
        examples[paper_id] = Example(
            id=paper_id,
            text=paper_text(record.get("title"), record.get("abstract")),
            positive=True,
            labels=list(record.get("labels") or []),
            published=published,
            title=" ".join((record.get("title") or "").split()),
            source="seed",
        )
    return list(examples.values())


def effective_decisions(db: sqlite_utils.Database) -> dict[str, dict]:
    """paper id -> the decision in force, as a ``decisions`` row (categories as JSON).

    Which decision is in force is ``review.effective_decisions``' rule, the one
    propose, triage and export use, so training never disagrees with them.
    """
    if not db["decisions"].exists():
        return {}
    return {pid: {**asdict(d), "categories": dumps(d.categories)} for pid, d in review.effective_decisions(db).items()}


def decisions_fingerprint(decisions: dict[str, dict]) -> str:
    items = sorted(
        (pid, d["decision"], dumps(sorted(loads(d.get("categories"), []) or []))) for pid, d in decisions.items()
    )
    return hashlib.sha256(dumps(items).encode()).hexdigest()[:16]


def apply_decisions(db: sqlite_utils.Database, examples: list[Example], decisions: dict[str, dict]) -> list[Example]:
    """Examples with reviewer decisions applied (they win over the files)."""
    by_id = {e.id: e for e in examples}
    papers = papers_by_id(db, [pid for pid in decisions if pid not in by_id], "id, title, abstract, published")
    out = [Example(**{**e.__dict__, "labels": list(e.labels)}) for e in examples]
    by_id = {e.id: e for e in out}
    for pid, decision in sorted(decisions.items()):
        accept = decision["decision"] == "accept"
        categories = [c for c in (loads(decision.get("categories"), []) or []) if c]
        example = by_id.get(pid)
        if example is None:
            row = papers.get(pid)
            if row is None:
                continue
            example = Example(
                id=pid,
                text=paper_text(row["title"], row["abstract"]),
                positive=accept,
                published=parse_date(row["published"]),
                title=row["title"] or "",
                source="decision",
            )
            out.append(example)
            by_id[pid] = example
        example.positive = accept
        if accept and categories:
            example.labels = categories
        elif not accept:
            example.labels = []
    return out


def training_hash(examples: Sequence[Example], embedder_id: str, params: dict) -> str:
    """The model's identity: training data, embedder, parameters and ``MODEL_VERSION``
    (scores are stored per model id, so a new id makes every database rescore)."""
    digest = hashlib.sha256()
    digest.update(dumps({"embedder": embedder_id, "params": params, "version": MODEL_VERSION}).encode())
    for e in sorted(examples, key=lambda e: e.id):
        digest.update(dumps([e.id, hashlib.sha256(e.text.encode()).hexdigest(), e.positive, sorted(e.labels)]).encode())
    return digest.hexdigest()


# --- vectors ----------------------------------------------------------------------


def vectors_for(
    texts: Sequence[str],
    embedder,
    db: sqlite_utils.Database | None = None,
    store: VectorStore | None = None,
    reporter: Reporter | None = None,
) -> np.ndarray:
    """Embeddings for texts: shipped store first, then the db cache, then the model.

    Vectors are rounded through float16, the precision of the shipped store, so
    a model trained from shipped vectors and one trained from fresh ones agree.
    """
    from .embed import content_hash

    out = np.zeros((len(texts), 0), dtype=np.float32)
    found: dict[int, np.ndarray] = {}
    if store is not None and store.model_id == embedder.model_id:
        for i, text in enumerate(texts):
            vector = store.get(content_hash(text))
            if vector is not None:
                found[i] = vector
    rest = [i for i in range(len(texts)) if i not in found]
    if rest:
        fresh = embed_texts(db, [texts[i] for i in rest], embedder, reporter=reporter)
        for i, vector in zip(rest, fresh):
            found[i] = vector
    if found:
        out = np.stack([found[i] for i in range(len(texts))])
    return out.astype(np.float16).astype(np.float32)


# --- the model ------------------------------------------------------------------------


def taxonomy_labels(nodes: list[dict]) -> list[str]:
    """The columns the taxonomy classifier scores: leaves, including auxiliary nodes."""
    return [n["id"] for n in nodes if n["is_leaf"]]


def label_matrix(examples: Sequence[Example], nodes: list[dict]) -> np.ndarray:
    """0/1 matrix over leaf labels; an inner-node label spreads over its leaves."""
    labels = taxonomy_labels(nodes)
    col = {label: j for j, label in enumerate(labels)}
    parent = {n["id"]: n["parent"] for n in nodes}
    leaves_under: dict[str, list[str]] = {}
    for leaf in labels:
        node = leaf
        while node:
            leaves_under.setdefault(node, []).append(leaf)
            node = parent.get(node)
    Y = np.zeros((len(examples), len(labels)))
    for i, e in enumerate(examples):
        for label in e.labels:
            under = leaves_under.get(label, [])
            if label in col:
                Y[i, col[label]] = 1.0
            elif under:
                for leaf in under:
                    Y[i, col[leaf]] = max(Y[i, col[leaf]], 1.0 / len(under))
    return Y


def description_texts(nodes: list[dict]) -> list[str]:
    """Name + description of each leaf label (the taxonomy classifier's priors)."""
    return [f"{n['name']}. {n['description']}" for n in nodes if n["is_leaf"]]


def node_texts(nodes: list[dict]) -> list[str]:
    """Name + description of every node (the relevance classifier's prior positives)."""
    return [f"{n['name']}. {n['description']}" for n in nodes]


@dataclass
class ClassifierModel:
    """Everything needed to score a paper; saved with joblib as one artefact."""

    model_id: str
    embedder_id: str
    relevance: RelevanceClassifier
    taxonomy: TaxonomyClassifier
    nodes: list
    reference: dict  # ids, titles, vectors of labelled survey papers (for "nearest")
    meta: dict

    @property
    def labels(self) -> list[str]:
        return taxonomy_labels(self.nodes)

    def node_scores(self, leaf_scores: np.ndarray) -> list[dict]:
        """Scores for every node, best first; a parent scores at least its best child."""
        parent = {n["id"]: n["parent"] for n in self.nodes}
        scores: dict[str, float] = {}
        for label, score in zip(self.labels, leaf_scores):
            node = label
            while node:
                scores[node] = max(scores.get(node, 0.0), float(score))
                node = parent.get(node)
        def depth(node):
            return 0 if not parent.get(node) else 1 + depth(parent[node])

        # ties (a parent equals its best child) put the most specific node first
        ranked = sorted(scores.items(), key=lambda kv: (-round(kv[1], 3), -depth(kv[0]), kv[0]))
        return [{"id": k, "score": round(v, 3)} for k, v in ranked]

    def predict(
        self, texts: Sequence[str], vectors: np.ndarray, top_terms: int = TERMS, ids: Sequence[str | None] | None = None
    ) -> list[dict]:
        """Relevance, categories, unsure flag and explanation per text (a survey
        paper is not listed as its own nearest neighbour when ``ids`` are given)."""
        if len(texts) == 0:
            return []
        X = PaperSet(texts, vectors)
        relevance = self.relevance.predict_proba(X)[:, 1]
        leaf_scores = self.taxonomy.predict_proba(X)
        sims = X.vectors @ self.reference["vectors"].T
        terms = self.relevance.explain_terms(list(texts), top_terms)
        out = []
        for i, text in enumerate(texts):
            own = ids[i] if ids is not None else None
            nearest = [j for j in np.argsort(-sims[i])[: NEAREST + 1] if self.reference["ids"][j] != own][:NEAREST]
            best_leaf = float(leaf_scores[i].max()) if leaf_scores.shape[1] else 0.0
            out.append(
                {
                    "relevance": round(float(relevance[i]), 4),
                    "categories": self.node_scores(leaf_scores[i]),
                    "unsure": int(relevance[i] >= RELEVANT and best_leaf < UNSURE_BELOW),
                    "explanation": {
                        "nearest": [
                            {
                                "id": self.reference["ids"][j],
                                "title": self.reference["titles"][j],
                                "similarity": round(float(sims[i, j]), 3),
                            }
                            for j in nearest
                        ],
                        "terms": terms[i],
                    },
                }
            )
        return out


def fit_model(
    examples: Sequence[Example],
    vectors: np.ndarray,
    nodes: list[dict],
    description_vectors: np.ndarray,
    embedder_id: str,
    relevance_params: dict | None = None,
    taxonomy_params: dict | None = None,
    node_vectors: np.ndarray | None = None,
) -> ClassifierModel:
    """Train relevance and taxonomy models on examples (deterministic: fixed seeds).

    ``node_vectors`` (embeddings of ``node_texts``) make the node descriptions
    prior positives of the relevance model; without them it uses papers only.
    """
    relevance_params = relevance_params or {}
    taxonomy_params = taxonomy_params or {}
    X = PaperSet([e.text for e in examples], vectors)
    y = np.array([int(e.positive) for e in examples])
    prior = {"prior_texts": tuple(node_texts(nodes)), "prior_vectors": node_vectors} if node_vectors is not None else {}
    # probabilities are calibrated on papers drawn like new ones: stream records and
    # reviewer decisions, not survey papers known only from the seeds
    from_stream = np.array([e.in_stream or e.source == "decision" for e in examples])
    relevance = RelevanceClassifier(**relevance_params, **prior).fit(X, y, calibration_rows=from_stream)
    labelled = np.array([i for i, e in enumerate(examples) if e.positive and e.labels], dtype=int)
    Y = label_matrix([examples[i] for i in labelled], nodes)
    taxonomy = TaxonomyClassifier(
        labels=tuple(taxonomy_labels(nodes)),
        label_vectors=description_vectors,
        label_texts=tuple(description_texts(nodes)),
        **taxonomy_params,
    ).fit(X.subset(labelled), Y)
    effective = {
        "relevance": {k: v for k, v in relevance.get_params().items() if not k.startswith("prior_")},
        "relevance_priors": list(relevance.prior_texts),
        "taxonomy": {k: v for k, v in taxonomy.get_params().items() if k not in ("labels", "label_vectors")},
    }
    data_hash = training_hash(examples, embedder_id, effective)
    return ClassifierModel(
        model_id=f"evla-{data_hash[:12]}",
        embedder_id=embedder_id,
        relevance=relevance,
        taxonomy=taxonomy,
        nodes=[{k: n[k] for k in ("id", "name", "parent", "level", "is_leaf")} for n in nodes],
        reference={
            "ids": [examples[i].id for i in labelled],
            "titles": [examples[i].title for i in labelled],
            "vectors": X.vectors[labelled],
        },
        meta={
            "model_id": f"evla-{data_hash[:12]}",
            "training_data_sha256": data_hash,
            "embedder": embedder_id,
            "examples": len(examples),
            "positives": int(y.sum()),
            "labelled": int(len(labelled)),
            "relevance_params": {k: v for k, v in relevance.get_params().items() if not k.startswith("prior_")},
            "relevance_prior_texts": len(relevance.prior_texts),
            "taxonomy_params": {k: v for k, v in taxonomy.get_params().items() if k not in ("labels", "label_vectors", "label_texts")},
        },
    )


def save_model(model: ClassifierModel, directory: Path, extra_meta: dict | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    joblib.dump(model, path, compress=3)
    meta = {**model.meta, **(extra_meta or {})}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def load_model(directory: Path) -> ClassifierModel | None:
    path = Path(directory) / MODEL_FILE
    if not path.exists():
        return None
    try:
        return joblib.load(path)
    except Exception as exc:  # a stale or foreign pickle: say which file
        raise BadInput(f"cannot load classifier {path}: {exc}") from exc


def local_models_dir(db: sqlite_utils.Database) -> Path:
    """Where a db's retrained model lives (beside the database, never in ``models/``)."""
    return db_dir(db) / "models"


# --- training entry points ----------------------------------------------------------------


def _nodes(db: sqlite_utils.Database | None, seeds: Path) -> list[dict]:
    if db is not None and db["taxonomy"].exists() and db["taxonomy"].count:
        return list(db["taxonomy"].rows_where(order_by="position"))
    return load_taxonomy(seeds / TAXONOMY_FILE)


def train(
    db: sqlite_utils.Database | None,
    embedder=None,
    seeds: Path | None = None,
    store: VectorStore | None = None,
    decisions: dict | None = None,
    reporter: Reporter | None = None,
) -> tuple[ClassifierModel, list[Example], np.ndarray]:
    """Train a model from the seed files plus ``decisions``; returns the model, the
    examples and their vectors (so ``evla train`` can ship them)."""
    reporter = reporter or Reporter()
    seeds = Path(seeds or seeds_dir())
    embedder = embedder or embedder_from_config(load_config())
    examples = training_examples(seeds)
    if decisions:
        examples = apply_decisions(db, examples, decisions)
    nodes = _nodes(db, seeds)
    texts = [e.text for e in examples]
    vectors = vectors_for(texts, embedder, db, store, reporter)
    description_vectors = vectors_for(description_texts(nodes), embedder, db, store, reporter)
    node_vectors = vectors_for(node_texts(nodes), embedder, db, store, reporter)
    reporter.note(f"training on {len(examples):,} papers ({sum(e.positive for e in examples)} relevant)")
    model = fit_model(examples, vectors, nodes, description_vectors, embedder.model_id, node_vectors=node_vectors)
    model.meta["decisions"] = decisions_fingerprint(decisions or {})
    model.meta["decision_count"] = len(decisions or {})
    return model, examples, vectors


def current_model(
    db: sqlite_utils.Database,
    embedder=None,
    reporter: Reporter | None = None,
    store: VectorStore | None = None,
) -> tuple[ClassifierModel, bool]:
    """The model to score with, retraining first when decisions changed since the
    model was trained. Returns (model, retrained)."""
    reporter = reporter or Reporter()
    embedder = embedder or embedder_from_config(load_config())
    decisions = effective_decisions(db)
    wanted = decisions_fingerprint(decisions)
    for directory in (local_models_dir(db), models_dir()):
        model = load_model(directory)
        if model is not None and model.embedder_id == embedder.model_id and model.meta.get("decisions") == wanted:
            return model, False
    if store is None:
        store = VectorStore.load(models_dir())
    reporter.note(f"retraining: {len(decisions)} reviewer decisions differ from the current model's")
    model, _, _ = train(db, embedder, store=store, decisions=decisions, reporter=reporter)
    save_model(model, local_models_dir(db), {"trained_at": now_iso()})
    return model, True


# --- scoring ---------------------------------------------------------------------------


def score_papers(
    db: sqlite_utils.Database,
    reporter: Reporter | None = None,
    embedder=None,
    batch_size: int = 512,
    rescore: bool = False,
) -> dict:
    """Score every paper without a score from the current model (retraining first
    when reviewer decisions changed). Returns counts."""
    reporter = reporter or Reporter()
    embedder = embedder or embedder_from_config(load_config())
    store = VectorStore.load(models_dir())
    model, retrained = current_model(db, embedder, reporter, store)
    where = "" if rescore else "where id not in (select paper_id from scores where model = ?)"
    params = [] if rescore else [model.model_id]
    rows = list(db.query(f"select id, title, abstract from papers {where} order by id", params))
    texts = [paper_text(r["title"], r["abstract"]) for r in rows]
    preseeded = preseed_cache(db, texts, embedder.model_id, store)
    vectors = embed_texts(db, texts, embedder, reporter=reporter) if texts else np.zeros((0, 0))
    vectors = vectors.astype(np.float16).astype(np.float32)
    if rows:
        reporter.start(f"scoring {len(rows):,} papers", total=len(rows))
    scored_at = now_iso()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        predictions = model.predict(
            texts[start : start + batch_size], vectors[start : start + batch_size], ids=[r["id"] for r in chunk]
        )
        with db.conn:
            db["scores"].upsert_all(
                [
                    {
                        "paper_id": row["id"],
                        "model": model.model_id,
                        "relevance": p["relevance"],
                        "categories": dumps(p["categories"]),
                        "unsure": p["unsure"],
                        "explanation": dumps(p["explanation"]),
                        "scored_at": scored_at,
                    }
                    for row, p in zip(chunk, predictions)
                ],
                pk="paper_id",
            )
        reporter.advance(len(chunk))
    reporter.finish()
    return {
        "scored": len(rows),
        "model": model.model_id,
        "retrained": retrained,
        "embeddings_from_shipped_store": preseeded,
        "relevant": sum(1 for _ in db.query("select 1 from scores where model = ? and relevance >= ?", [model.model_id, RELEVANT])),
    }


def predict_records(
    records: Iterable[dict],
    model: ClassifierModel,
    embedder,
    store: VectorStore | None = None,
    reporter: Reporter | None = None,
) -> list[dict]:
    """Predictions for arXiv-snapshot records, in input order, without touching a db.

    Records missing an id, abstract or categories are scored from what they have.
    """
    records = list(records)
    texts = [paper_text(r.get("title"), r.get("abstract")) if isinstance(r, dict) else "" for r in records]
    vectors = vectors_for(texts, embedder, None, store, reporter) if texts else np.zeros((0, 0))
    out = []
    ids = [(_record_id(r) if isinstance(r, dict) and r.get("id") else None) for r in records]
    for record, prediction in zip(records, model.predict(texts, vectors, ids=ids)):
        raw_id = record.get("id") if isinstance(record, dict) else None
        out.append({"id": _record_id(record) if raw_id else None, **{k: prediction[k] for k in ("relevance", "categories", "explanation")}, "unsure": prediction["unsure"]})
    return out


def build_shipped_models(
    db: sqlite_utils.Database | None,
    out_dir: Path | None = None,
    evaluate: bool = True,
    embedder=None,
    reporter: Reporter | None = None,
) -> dict:
    """``evla train``: rebuild ``models/`` from the seed files alone (no reviewer
    decisions, so every install starts from the same model).

    Writes the model, its metadata (training data hash, counts, metrics) and the
    float16 vectors of every training text. Vectors come from the existing
    shipped store when their content hash matches, else they are embedded.
    """
    from .embed import content_hash, save_store

    reporter = reporter or Reporter()
    out_dir = Path(out_dir or models_dir())
    embedder = embedder or embedder_from_config(load_config())
    store = VectorStore.load(out_dir) or VectorStore.load(models_dir())
    model, examples, vectors = train(db, embedder, store=store, reporter=reporter)
    nodes = _nodes(db, seeds_dir())
    description_vectors = vectors_for(description_texts(nodes), embedder, db, store, reporter)
    extra: dict = {}
    previous = out_dir / META_FILE
    if not evaluate and previous.exists():
        old_meta = json.loads(previous.read_text())
        if old_meta.get("model_id") == model.model_id and "metrics" in old_meta:
            extra["metrics"] = old_meta["metrics"]  # same model: its measured metrics still hold
    if evaluate:
        from .evaluate import run_eval

        extra["metrics"] = run_eval(db, embedder, store, reporter=reporter)
    node_vectors = vectors_for(node_texts(nodes), embedder, db, store, reporter)
    # a seed's own text can differ from its stream record's; databases store the seed's
    seed_texts = [paper_text(r.get("title"), r.get("abstract")) for r in read_jsonl(seeds_dir() / SEED_PAPERS_FILE)]
    seed_vectors = vectors_for(seed_texts, embedder, db, store, reporter)
    texts = [e.text for e in examples] + description_texts(nodes) + node_texts(nodes) + seed_texts
    all_vectors = np.concatenate([vectors, description_vectors, node_vectors, seed_vectors])
    unique: dict[str, np.ndarray] = {}
    for text, vector in zip(texts, all_vectors):
        unique.setdefault(content_hash(text), vector)
    save_store(out_dir, embedder.model_id, list(unique), np.stack(list(unique.values())))
    save_model(model, out_dir, extra)
    return {**model.meta, **extra}
