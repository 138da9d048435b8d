"""``evla train``: the artefacts shipped in ``models/`` so a fresh install scores at once.

``build_shipped_models`` trains on the seed files alone (no reviewer decisions, so
every install starts from the same model) and writes the model, its metadata
(training data hash, counts, the metrics of ``evla eval``) and the float16 vectors of
every training text, which also pre-seed the embedding cache of new databases.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import sqlite_utils

from ..core.jsonl import read_jsonl
from ..core.progress import Reporter
from ..core.settings import SEED_PAPERS_FILE, models_dir, seeds_dir
from .classify import train, training_set
from .embed import Embedder, VectorStore, content_hash, paper_text, save_store, vectors_for
from .evaluate import run_eval
from .model import META_FILE, save_model
from .training import description_texts, node_texts


def build_shipped_models(
    db: sqlite_utils.Database | None,
    embedder: Embedder,
    out_dir: Path | None = None,
    evaluate: bool = True,
    seeds: Path | None = None,
    reporter: Reporter | None = None,
) -> dict:
    """Rebuild ``out_dir`` (default ``models/``); returns the model's metadata.

    Vectors come from the existing shipped store when their content hash matches,
    else they are embedded; the training set is embedded once and shared by the fit
    and the evaluation.
    """
    reporter = reporter or Reporter()
    out_dir = Path(out_dir or models_dir())
    seeds = Path(seeds or seeds_dir())
    store = VectorStore.load(out_dir) or VectorStore.load(models_dir())
    training = training_set(db, embedder, seeds, store, reporter=reporter)
    model, _ = train(db, embedder, training=training, reporter=reporter)
    extra: dict = {}
    previous = out_dir / META_FILE
    if evaluate:
        extra["metrics"] = {
            **run_eval(training, replay=False, reporter=reporter),
            "embedder": embedder.model_id,
        }
    elif previous.exists():
        old_meta = json.loads(previous.read_text())
        if old_meta.get("model_id") == model.model_id and "metrics" in old_meta:
            extra["metrics"] = old_meta["metrics"]  # same model: its measured metrics still hold
    # a seed's own text can differ from its stream record's; databases store the seed's
    seed_texts = [
        paper_text(r.get("title"), r.get("abstract")) for r in read_jsonl(seeds / SEED_PAPERS_FILE)
    ]
    seed_vectors = vectors_for(seed_texts, embedder, db, store, reporter)
    texts = (
        [e.text for e in training.examples]
        + description_texts(training.taxonomy)
        + node_texts(training.taxonomy)
        + seed_texts
    )
    vectors = np.concatenate(
        [training.vectors, training.description_vectors, training.node_vectors, seed_vectors]
    )
    unique: dict[str, np.ndarray] = {}
    for text, vector in zip(texts, vectors, strict=True):
        unique.setdefault(content_hash(text), vector)
    save_store(out_dir, embedder.model_id, list(unique), np.stack(list(unique.values())))
    save_model(model, out_dir, extra)
    return {**model.meta, **extra}
