"""Embedding and scoring one chunk of papers without a database: what a backfill engine
runs, in this process or on a cluster worker (``pipeline.dask_engine``). The driver looks
up the cache before and stores vectors and scores after, so nothing here opens SQLite."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classify import score_rows, vectors_where_needed
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
    """Embed what the model needs and the cache lacked, and score every text: the same
    steps as ``score_papers`` (``vectors_where_needed``, ``score_rows``)."""
    fresh: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        hashes = [content_hash(text) for text in texts]
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in task.cached}
        if missing:
            fresh.update(
                zip(missing, embed_texts(None, list(missing.values()), embedder), strict=True)
            )
        return np.stack([task.cached[h] if h in task.cached else fresh[h] for h in hashes])

    vectors = vectors_where_needed(model, task.texts, embed)
    scores = score_rows(model, task.ids, task.texts, vectors, task.scored_at)
    dim = vectors.shape[1]
    stacked = np.stack(list(fresh.values())) if fresh else np.zeros((0, dim), dtype=np.float32)
    return ScoreResult(list(fresh), stacked, scores)
