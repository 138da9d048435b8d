"""Embedding speed: the default path (sentence-transformers on torch) against
ONNX exports of the same packaged all-MiniLM-L6-v2 (fp32 and dynamic int8),
run with plain onnxruntime + tokenizers.

Speeds are compared inside one run, variants alternating round by round (the
machine is shared, absolute texts/s swing 2x with load), and printed as
ratios to the default. Agreement is the cosine between each variant's vector
and the default one for the same text.

``--replay`` also measures the effect on quality: it embeds every training
text with the int8 model (minutes) and runs the taxonomy CV and the weekly
replay of the evla ranker (K=10, 20) with those vectors beside the default ones.

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
from evla_miner.scoring.embed import OnnxEmbedder, SentenceTransformerEmbedder  # noqa: E402
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
        cos = (vectors[name] * vectors[base_name]).sum(axis=1)
        print(
            f"{name:42} {statistics.median(speeds[name]):17.1f} "
            f"{statistics.median(speeds[name]) / base:6.2f} "
            f"{cos.mean():9.4f} {cos.min():8.4f}"
        )
    if args.replay:
        replay_effect(variants, args.onnx_dir)


def replay_effect(variants, onnx_dir) -> None:
    """Taxonomy CV + replay with default vectors vs int8 vectors (same code, same seeds)."""
    from evla_miner.core.settings import models_dir
    from evla_miner.core.taxonomy import Taxonomy
    from evla_miner.scoring.embed import VectorStore, embed_texts, vectors_for
    from evla_miner.scoring.estimators import PaperSet, RelevanceClassifier
    from evla_miner.scoring.evaluate import ReplayData, replay, taxonomy_cv
    from evla_miner.scoring.training import description_texts, node_texts

    examples = training_examples(seeds_dir())
    nodes = Taxonomy.of(None, seeds_dir())
    texts = [e.text for e in examples]
    store = VectorStore.load(models_dir())
    default = variants["torch (sentence-transformers, default)"]
    int8 = variants["onnx int8 (dynamic quantisation)"]
    rows = {}
    for name, embedder in (("torch (default)", default), ("onnx int8", int8)):
        if embedder is default:
            vectors = vectors_for(texts, embedder, None, store)
            desc = vectors_for(description_texts(nodes), embedder, None, store)
            prior = vectors_for(node_texts(nodes), embedder, None, store)
        else:
            start = time.perf_counter()
            vectors = embed_texts(None, texts, embedder).astype(np.float16).astype(np.float32)
            print(
                f"embedded {len(texts):,} training texts with int8 in "
                f"{time.perf_counter() - start:.0f} s"
            )
            desc = embed_texts(None, description_texts(nodes), embedder)
            prior = embed_texts(None, node_texts(nodes), embedder)
        X = PaperSet(texts, vectors)
        tax = taxonomy_cv(X, [e.labels for e in examples], nodes, desc)
        data = ReplayData.from_examples(X, examples)

        def ranker(prior=prior):
            return RelevanceClassifier(prior_texts=tuple(node_texts(nodes)), prior_vectors=prior)

        rep = replay(data, {"evla": ranker})["rankers"]["evla"]
        rows[name] = (tax, rep)
    print(
        f"{'vectors':16} {'pillar acc':>10} {'leaf R@3':>9} {'R@10 wk':>8} {'R@20 wk':>8} "
        f"{'AP':>6} {'WSS@95':>7}"
    )
    for name, (tax, rep) in rows.items():
        print(
            f"{name:16} {tax['pillar_top1_accuracy']:10.3f} {tax['leaf_recall@3']:9.3f} "
            f"{rep['recall@10_week_mean']:8.3f} {rep['recall@20_week_mean']:8.3f} {rep['ap']:6.3f} "
            f"{rep['wss95']:7.3f}"
        )


if __name__ == "__main__":
    main()
