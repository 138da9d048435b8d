"""Embedding speed: the default path (sentence-transformers on torch) against
ONNX exports of the same packaged all-MiniLM-L6-v2 (fp32 and dynamic int8),
run with plain onnxruntime + tokenizers, and a static model2vec model distilled
locally from it.

Speeds are compared inside one run, variants alternating round by round (the
machine is shared, absolute texts/s swing 2x with load), and printed as
ratios to the default. Agreement is the cosine between each variant's vector
and the default one for the same text (model2vec has its own space: none).

``--replay`` also measures the effect on quality: it embeds every training
text with the int8 and the model2vec models (minutes) and runs the taxonomy CV and
the rolling-origin static ranking of the evla ranker with those vectors beside the
default ones, printing each difference with its spread across cuts.

    python benchmarks/embed.py [--texts 192] [--rounds 3] [--replay]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evla_miner.core.settings import seeds_dir  # noqa: E402
from evla_miner.scoring.embed import (  # noqa: E402
    Model2VecEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
)
from evla_miner.scoring.training import training_examples  # noqa: E402


def sample_texts(n: int) -> list[str]:
    texts = [e.text for e in training_examples(seeds_dir()) if e.in_stream and len(e.text) > 400]
    step = max(1, len(texts) // n)
    return texts[::step][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=192)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--replay",
        action="store_true",
        help="also measure the effect on taxonomy CV and replay metrics",
    )
    parser.add_argument("--onnx-dir", default=None, help="where the ONNX exports are cached")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    texts = sample_texts(args.texts)
    variants = {
        "torch (sentence-transformers, default)": SentenceTransformerEmbedder(),
        "onnx fp32 (onnxruntime+tokenizers)": OnnxEmbedder(quantize=False, cache_dir=args.onnx_dir),
        "onnx int8 (dynamic quantisation)": OnnxEmbedder(quantize=True, cache_dir=args.onnx_dir),
        "model2vec 256 (distilled locally)": Model2VecEmbedder(cache_dir=args.onnx_dir),
    }
    for embedder in variants.values():  # load/export outside the timed part
        embedder.encode(texts[:2])
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, embedder in variants.items():
            start = time.perf_counter()
            vectors[name] = embedder.encode(texts)
            speeds[name].append(len(texts) / (time.perf_counter() - start))
    tokens = statistics.mean(len(t.split()) for t in texts)
    print(
        f"{len(texts)} stream texts (~{tokens:.0f} words each), {args.rounds} alternating rounds, "
        f"torch threads 2, cores {os.cpu_count()}"
    )
    base_name = next(iter(variants))
    base = statistics.median(speeds[base_name])
    print(f"{'variant':42} {'texts/s (median)':>17} {'ratio':>6} {'cos mean':>9} {'cos min':>8}")
    for name in variants:
        same_space = vectors[name].shape == vectors[base_name].shape
        cos = (vectors[name] * vectors[base_name]).sum(axis=1) if same_space else None
        agreement = f"{'-':>9} {'-':>8}"
        if cos is not None:
            agreement = f"{cos.mean():9.4f} {cos.min():8.4f}"
        print(
            f"{name:42} {statistics.median(speeds[name]):17.1f} "
            f"{statistics.median(speeds[name]) / base:6.2f} {agreement}"
        )
    if args.replay:
        replay_effect(variants, args.onnx_dir)


def replay_effect(variants, onnx_dir) -> None:
    """Taxonomy CV and the rolling-origin static ranking (six cuts) with default vectors vs
    int8 and model2vec vectors: same code, same seeds; each paired difference is read
    against the spread."""
    from evla_miner.core.settings import models_dir
    from evla_miner.core.taxonomy import Taxonomy
    from evla_miner.scoring.embed import VectorStore, embed_texts, vectors_for
    from evla_miner.scoring.estimators import PaperSet, RelevanceClassifier
    from evla_miner.scoring.evaluate import taxonomy_cv
    from evla_miner.scoring.rolling import RollingData, paired, rolling_eval
    from evla_miner.scoring.training import description_texts, node_texts

    examples = training_examples(seeds_dir())
    nodes = Taxonomy.of(None, seeds_dir())
    texts = [e.text for e in examples]
    store = VectorStore.load(models_dir())
    default = variants["torch (sentence-transformers, default)"]
    compared = {
        "torch (default)": default,
        "onnx int8": variants["onnx int8 (dynamic quantisation)"],
        "model2vec 256": variants["model2vec 256 (distilled locally)"],
    }
    rows = {}
    for name, embedder in compared.items():
        if embedder is default:
            vectors = vectors_for(texts, embedder, None, store)
            desc = vectors_for(description_texts(nodes), embedder, None, store)
            prior = vectors_for(node_texts(nodes), embedder, None, store)
        else:
            start = time.perf_counter()
            vectors = embed_texts(None, texts, embedder).astype(np.float16).astype(np.float32)
            print(
                f"embedded {len(texts):,} training texts with {name} in "
                f"{time.perf_counter() - start:.0f} s"
            )
            desc = embed_texts(None, description_texts(nodes), embedder)
            prior = embed_texts(None, node_texts(nodes), embedder)
        X = PaperSet(texts, vectors)
        tax = taxonomy_cv(X, [e.labels for e in examples], nodes, desc)

        def ranker(prior=prior):
            return RelevanceClassifier(prior_texts=tuple(node_texts(nodes)), prior_vectors=prior)

        data = RollingData.from_examples(X, examples)
        rows[name] = (tax, rolling_eval({"evla": ranker}, data, replay=False)["rankers"]["evla"])
    keys = ("static.full.recall@10", "static.full.recall@20", "static.full.ap", "static.related.ap")
    print(
        f"{'vectors':16} {'pillar acc':>10} {'leaf R@3':>9} " + " ".join(f"{k:>22}" for k in keys)
    )
    for name, (tax, rel) in rows.items():
        cells = " ".join(
            f"{rel['summary'][k]['mean']:14.3f} ± {rel['summary'][k]['std']:.3f}" for k in keys
        )
        print(f"{name:16} {tax['pillar_top1_accuracy']:10.3f} {tax['leaf_recall@3']:9.3f} {cells}")
    _, base = rows["torch (default)"]
    for name in list(compared)[1:]:
        _, fast = rows[name]
        for k in keys:
            d = paired(fast["cuts"], base["cuts"], k)
            print(f"{name} minus torch, {k}: {d['mean']:+.4f} ± {d['std']:.4f} over cuts")


if __name__ == "__main__":
    main()
