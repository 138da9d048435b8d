"""Embedding cache, the model-free test embedder, shipped vector stores."""

from __future__ import annotations

import numpy as np
import pytest

from evla_miner.core.settings import ClassifySettings
from evla_miner.scoring.embed import (
    HashingEmbedder,
    VectorStore,
    content_hash,
    embed_texts,
    embedder_from_settings,
    paper_text,
    preseed_cache,
    save_store,
)


class CountingEmbedder(HashingEmbedder):
    """Records every text it is asked to embed."""

    def __init__(self, dim=64):
        super().__init__(dim)
        self.seen: list[str] = []

    def encode(self, texts, batch_size=None):
        self.seen.extend(texts)
        return super().encode(texts)


def test_paper_text_collapses_whitespace_and_tolerates_missing_parts():
    assert paper_text("A  title\n", "An\n abstract.") == "A title\nAn abstract."
    assert paper_text("Only title", None) == "Only title"
    assert paper_text(None, "  ") == ""
    assert paper_text(None, None) == ""


def test_hashing_embedder_is_deterministic_normalised_and_lexical():
    emb = HashingEmbedder(128)
    a, b, c = emb.encode(
        ["token pruning for VLA models", "pruning tokens in VLA models", "galaxy rotation curves"]
    )
    again = HashingEmbedder(128).encode(["token pruning for VLA models"])[0]
    assert np.allclose(a, again)
    assert np.isclose(np.linalg.norm(a), 1.0)
    assert a @ b > a @ c
    assert HashingEmbedder(128).encode([""]).shape == (1, 128)


def test_embed_texts_caches_by_model_and_content_hash(db):
    emb = CountingEmbedder()
    texts = ["alpha beta", "gamma delta", "alpha beta"]
    first = embed_texts(db, texts, emb, batch_size=1)
    assert emb.seen == ["alpha beta", "gamma delta"]  # the duplicate is embedded once
    assert np.allclose(first[0], first[2])
    assert db["embeddings"].count == 2
    row = db.execute(
        "select model, content_hash, dim from embeddings order by content_hash"
    ).fetchall()[0]
    assert row[0] == emb.model_id and row[2] == 64
    assert row[1] in {content_hash("alpha beta"), content_hash("gamma delta")}

    emb.seen.clear()
    second = embed_texts(db, ["gamma delta", "alpha beta, revised"], emb)
    assert emb.seen == ["alpha beta, revised"]  # changed text is embedded again, unchanged is not
    assert np.allclose(second[0], first[1])

    other = CountingEmbedder(dim=32)  # another model id: its own cache entries
    embed_texts(db, ["alpha beta"], other)
    assert other.seen == ["alpha beta"]


def test_embed_texts_without_db_writes_nothing(db):
    emb = CountingEmbedder()
    out = embed_texts(None, ["x y", "z"], emb)
    assert out.shape == (2, 64)
    assert db["embeddings"].count == 0


def test_store_round_trip_splits_files_and_preseeds_by_hash(db, tmp_path):
    emb = HashingEmbedder(16)
    texts = [f"paper number {i}" for i in range(50)]
    vectors = emb.encode(texts)
    paths = save_store(
        tmp_path,
        emb.model_id,
        [content_hash(t) for t in texts],
        vectors,
        max_bytes=20 * (16 * 2 + 64),
    )
    assert len(paths) == 3  # 20 rows per file
    store = VectorStore.load(tmp_path)
    assert store.model_id == emb.model_id
    assert np.allclose(store.get(content_hash(texts[7])), vectors[7], atol=1e-3)  # float16
    assert store.get(content_hash("not shipped")) is None

    wanted = texts[:5] + ["paper number 3, edited abstract"]
    assert preseed_cache(db, wanted, emb.model_id, store) == 5
    assert preseed_cache(db, wanted, emb.model_id, store) == 0  # already there
    assert preseed_cache(db, wanted, "another-model", store) == 0
    counting = CountingEmbedder(16)
    embed_texts(db, wanted, counting)
    assert counting.seen == ["paper number 3, edited abstract"]


def test_embedder_from_settings():
    assert (
        embedder_from_settings(ClassifySettings()).model_id
        == "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert isinstance(
        embedder_from_settings(ClassifySettings(embedding_model="hashing-bow-64")), HashingEmbedder
    )
    custom = embedder_from_settings(ClassifySettings(embedding_model="/opt/my-model"))
    assert custom.model_id == "/opt/my-model"


@pytest.mark.slow
def test_packaged_minilm_embeds_offline(capfd):
    from evla_miner.scoring.embed import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    vectors = emb.encode(
        [
            "Token pruning makes vision-language-action models faster on robots.",
            "Reducing visual tokens speeds up VLA inference for manipulation.",
            "We measure the rotation curves of dwarf galaxies.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    # loading prints nothing of its own (transformers' "Loading weights" bar is off)
    assert "Loading weights" not in capfd.readouterr().err
