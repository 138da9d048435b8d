"""The trained classifier as one artefact: fitting it, what it predicts, where it lives.

``ClassifierModel`` holds the relevance estimator, the taxonomy estimator, the taxonomy
nodes and the labelled survey papers used to explain a score ("nearest"). It is saved
with joblib (``classifier.joblib``, which pickles this module's and ``estimators``'
import paths: moving either means rebuilding ``models/`` with ``evla train``) beside
``training.json``, its metadata.

A database's retrained model lives beside the database (``<db dir>/models/``), never in
the shipped ``models/``; ``model_directories`` is the one search order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ..core.db import dumps
from ..core.errors import BadInput
from ..core.taxonomy import Taxonomy
from .estimators import PaperSet, RelevanceClassifier, TaxonomyClassifier
from .training import Example, TrainingSet, description_texts, label_matrix, node_texts

MODEL_FILE = "classifier.joblib"
META_FILE = "training.json"
RELEVANT = 0.5  # relevance at which a paper counts as relevant (unsure flag, proposals)
UNSURE_BELOW = 0.25  # a relevant paper whose best leaf scores below this fits no leaf
# Bump when a change to the estimators changes what a model trained on the same data
# predicts (2: taxonomy prior in words; relevance calibrated on stream rows only; 3: the
# first category is the best pillar's best leaf; 4: the text-only gate, ``needs_vectors``).
MODEL_VERSION = 4
NEAREST = 3
TERMS = 8


def training_hash(examples: Sequence[Example], embedder_id: str, params: dict) -> str:
    """The model's identity: training data, embedder, parameters and ``MODEL_VERSION``
    (scores are stored per model id, so a new id makes every database rescore)."""
    digest = hashlib.sha256()
    digest.update(
        dumps({"embedder": embedder_id, "params": params, "version": MODEL_VERSION}).encode()
    )
    for e in sorted(examples, key=lambda e: e.id):
        digest.update(
            dumps(
                [e.id, hashlib.sha256(e.text.encode()).hexdigest(), e.positive, sorted(e.labels)]
            ).encode()
        )
    return digest.hexdigest()


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
    def tree(self) -> Taxonomy:
        return Taxonomy(self.nodes)

    @property
    def labels(self) -> list[str]:
        return self.tree.leaves

    def node_scores(self, leaf_scores: np.ndarray, tree: Taxonomy | None = None) -> list[dict]:
        """Scores for every node, best first (``Taxonomy.rank_nodes``: the first entry is
        the best leaf of the best pillar)."""
        return (tree or self.tree).rank_nodes(leaf_scores)

    def needs_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Which texts ``predict`` reads a vector for: the papers past the relevance
        model's text-only gate. Callers embed only these (``vectors_where_needed``)."""
        return self.relevance.needs_vectors(list(texts))

    def predict(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        top_terms: int = TERMS,
        ids: Sequence[str | None] | None = None,
    ) -> list[dict]:
        """Relevance, categories, unsure flag and explanation per text (a survey
        paper is not listed as its own nearest neighbour when ``ids`` are given).

        Rows of ``vectors`` that ``needs_vectors`` rules out are never read (they may be
        zeros): those papers get the gate's probability, categories from their words and
        no nearest survey papers."""
        if len(texts) == 0:
            return []
        texts = list(texts)
        tree = self.tree
        X = PaperSet(texts, vectors)
        embedded = self.needs_vectors(texts)
        relevance = self.relevance.predict_proba(X, embedded)[:, 1]
        leaf_scores = np.zeros((len(texts), len(self.taxonomy.labels)))
        sims = np.zeros((len(texts), len(self.reference["ids"])))
        rows = np.flatnonzero(embedded)
        if len(rows):
            leaf_scores[rows] = self.taxonomy.predict_proba(X.subset(rows))
            sims[rows] = X.vectors[rows] @ self.reference["vectors"].T
        rest = np.flatnonzero(~embedded)
        if len(rest):
            leaf_scores[rest] = self.taxonomy.predict_proba_words([texts[i] for i in rest])
        terms = self.relevance.explain_terms(texts, top_terms)
        out = []
        for i in range(len(texts)):
            own = ids[i] if ids is not None else None
            nearest = (
                [j for j in np.argsort(-sims[i])[: NEAREST + 1] if self.reference["ids"][j] != own][
                    :NEAREST
                ]
                if embedded[i]
                else []
            )
            best_leaf = float(leaf_scores[i].max()) if leaf_scores.shape[1] else 0.0
            out.append(
                {
                    "relevance": round(float(relevance[i]), 4),
                    "categories": self.node_scores(leaf_scores[i], tree),
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
    training: TrainingSet,
    embedder_id: str,
    relevance_params: dict | None = None,
    taxonomy_params: dict | None = None,
) -> ClassifierModel:
    """Train relevance and taxonomy models (deterministic: fixed seeds).

    The node descriptions are prior positives of the relevance model, and each leaf
    label's text is a prior example of the taxonomy model.
    """
    examples, tree = training.examples, training.taxonomy
    X = training.papers
    y = np.array([int(e.positive) for e in examples])
    prior: dict[str, Any] = {
        "prior_texts": tuple(node_texts(tree)),
        "prior_vectors": training.node_vectors,
    }
    # probabilities are calibrated on papers drawn like new ones: stream records and
    # reviewer decisions, not survey papers known only from the seeds
    from_stream = np.array([e.in_stream or e.source == "decision" for e in examples])
    relevance = RelevanceClassifier(**(relevance_params or {}), **prior).fit(
        X, y, calibration_rows=from_stream
    )
    labelled = np.array([i for i, e in enumerate(examples) if e.positive and e.labels], dtype=int)
    Y = label_matrix([examples[i] for i in labelled], tree)
    taxonomy = TaxonomyClassifier(
        labels=tuple(tree.leaves),
        label_vectors=training.description_vectors,
        label_texts=tuple(description_texts(tree)),
        **(taxonomy_params or {}),
    ).fit(X.subset(labelled), Y)
    relevance_effective = {
        k: v for k, v in relevance.get_params().items() if not k.startswith("prior_")
    }
    effective = {
        "relevance": relevance_effective,
        "relevance_priors": list(relevance.prior_texts),
        "taxonomy": {
            k: v for k, v in taxonomy.get_params().items() if k not in ("labels", "label_vectors")
        },
    }
    data_hash = training_hash(examples, embedder_id, effective)
    model_id = f"evla-{data_hash[:12]}"
    return ClassifierModel(
        model_id=model_id,
        embedder_id=embedder_id,
        relevance=relevance,
        taxonomy=taxonomy,
        nodes=[
            {k: n[k] for k in ("id", "name", "parent", "level", "is_leaf")} for n in tree.rows()
        ],
        reference={
            "ids": [examples[i].id for i in labelled],
            "titles": [examples[i].title for i in labelled],
            "vectors": X.vectors[labelled],
        },
        meta={
            "model_id": model_id,
            "training_data_sha256": data_hash,
            "embedder": embedder_id,
            "examples": len(examples),
            "positives": int(y.sum()),
            "labelled": int(len(labelled)),
            "relevance_params": relevance_effective,
            "relevance_prior_texts": len(relevance.prior_texts),
            "taxonomy_params": {
                k: v
                for k, v in taxonomy.get_params().items()
                if k not in ("labels", "label_vectors", "label_texts")
            },
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


def model_directories(db_directory: Path, shipped: Path) -> list[Path]:
    """Where a database's models are looked for, first match wins: its own retrained
    model (``<db dir>/models``), then the shipped ``models/``."""
    return [Path(db_directory) / "models", Path(shipped)]


def find_model(directories: Sequence[Path]) -> ClassifierModel:
    """The first model found in ``directories``; none is a one-line error."""
    for directory in directories:
        model = load_model(directory)
        if model is not None:
            return model
    raise BadInput("no trained classifier found; run `evla train`")
