"""Embedding and scoring one chunk of papers without a database: what a backfill engine
runs, in this process or on a cluster worker (``pipeline.dask_engine``). The driver looks
up the cache before and stores vectors and scores after, so nothing here opens SQLite."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classify import score_rows, shipped_precision
from .embed import Embedder, content_hash, embed_texts
from .model import ClassifierModel


@dataclass
class ScoreTask:
    """What a worker needs to score one chunk; no database involved."""

    ids: list[str]
    texts: list[str]
    cached: dict[str, np.ndarray]  # content hash -> vector, for texts the cache already has
    scored_at: str


@dataclass
class ScoreResult:
    hashes: list[str]  # content hashes of the texts embedded for this chunk
    vectors: np.ndarray  # their vectors (float32, as the embedder returned them)
    scores: list[dict]  # rows for the ``scores`` table


def embed_and_score(task: ScoreTask, embedder: Embedder, model: ClassifierModel) -> ScoreResult:
    """Embed what the cache lacked and score every text: the same steps as ``score_papers``
    (``embed_texts`` without a db, ``shipped_precision``, ``score_rows``)."""
    hashes = [content_hash(text) for text in task.texts]
    missing: dict[str, str] = {}
    for h, text in zip(hashes, task.texts, strict=True):
        if h not in task.cached and h not in missing:
            missing[h] = text
    fresh = embed_texts(None, list(missing.values()), embedder) if missing else None
    found = dict(task.cached)
    if fresh is not None:
        found.update(zip(missing, fresh, strict=True))
    if not task.texts:
        return ScoreResult([], np.zeros((0, 0), dtype=np.float32), [])
    vectors = shipped_precision(np.stack([found[h] for h in hashes]))
    scores = score_rows(model, task.ids, task.texts, vectors, task.scored_at)
    empty = np.zeros((0, vectors.shape[1]), dtype=np.float32)
    return ScoreResult(list(missing), fresh if fresh is not None else empty, scores)
