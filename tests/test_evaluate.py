"""The taxonomy cross-validation, the ranking of a paper's categories and the calibration
report, on tiny synthetic data (the relevance protocol: tests/test_rolling.py)."""

from __future__ import annotations

import numpy as np
import pytest

from evla_miner.core.taxonomy import Taxonomy
from evla_miner.scoring.estimators import (
    PaperSet,
    RelevanceClassifier,
    TaxonomyClassifier,
)
from evla_miner.scoring.evaluate import taxonomy_cv, taxonomy_nested_cv
from evla_miner.scoring.rolling import calibration

NODES = [
    {
        "id": "model",
        "name": "Model",
        "description": "",
        "parent": None,
        "level": "pillar",
        "is_leaf": 0,
    },
    {
        "id": "model.a",
        "name": "A",
        "description": "alpha",
        "parent": "model",
        "level": "category",
        "is_leaf": 1,
    },
    {
        "id": "data",
        "name": "Data",
        "description": "",
        "parent": None,
        "level": "pillar",
        "is_leaf": 0,
    },
    {
        "id": "data.b",
        "name": "B",
        "description": "beta",
        "parent": "data",
        "level": "category",
        "is_leaf": 1,
    },
    {
        "id": "foundation",
        "name": "F",
        "description": "gamma",
        "parent": None,
        "level": "auxiliary",
        "is_leaf": 1,
    },
]


def test_the_first_category_is_always_a_pillar_leaf_never_an_auxiliary_node():
    """Readers take the first category as the paper's pillar; an auxiliary leaf that
    scores highest (``foundation``) must not answer that question."""
    taxonomy = Taxonomy(NODES)
    ranked = taxonomy.rank_nodes([0.4, 0.2, 0.9])  # leaves: model.a, data.b, foundation
    assert ranked[0] == {"id": "model.a", "score": 0.4}
    assert [e["id"] for e in ranked[1:3]] == ["foundation", "model"]  # then by score
    assert {e["id"] for e in ranked} == {"model", "model.a", "data", "data.b", "foundation"}
    only_aux = Taxonomy([n for n in NODES if n["id"] == "foundation"]).rank_nodes([0.7])
    assert only_aux == [{"id": "foundation", "score": 0.7}]


CENTRES = np.eye(3, 8, dtype=np.float32)


def three_clusters(rng, text_of):
    """30 papers in three tight clusters of vectors, labelled model.a, data.b and foundation
    in turn; ``text_of(i, cluster)`` writes each paper's text."""
    vectors, labels, texts = [], [], []
    for i in range(30):
        k = i % 3
        v = CENTRES[k] + 0.05 * rng.standard_normal(8)
        vectors.append(v / np.linalg.norm(v))
        labels.append([["model.a"], ["data.b"], ["foundation"]][k])
        texts.append(text_of(i, k))
    return vectors, labels, texts


def test_taxonomy_cv_metrics_on_separable_data():
    nodes = NODES
    rng = np.random.default_rng(0)
    vectors, labels, texts = three_clusters(
        rng, lambda i, k: ["alpha words", "beta words", "gamma words"][k] + f" {i}"
    )
    X = PaperSet(texts + ["unlabelled"], np.array(vectors + [CENTRES[0]], dtype=np.float32))
    result = taxonomy_cv(
        X, labels + [[]], Taxonomy(nodes), np.eye(3, 8, dtype=np.float32), n_splits=5
    )
    assert result["papers"] == 30 and result["pillar_papers"] == 20
    assert result["pillar_top1_accuracy"] == pytest.approx(1.0)
    assert result["leaf_recall@3"] == pytest.approx(1.0)
    assert result["macro_f1"] > 0.9


def test_nested_cv_chooses_each_outer_folds_setting_by_an_inner_cv():
    """The words say nothing here (random tokens), the vectors everything: an inner CV
    must pick the setting that uses the embeddings (``weight_linear`` 1) over the one
    that ignores them, in every outer fold, and the outer folds then score perfectly."""
    rng = np.random.default_rng(1)
    vectors, labels, texts = three_clusters(
        rng, lambda i, k: " ".join(f"w{j}" for j in rng.integers(0, 500, 6))
    )
    X = PaperSet(texts, np.array(vectors, dtype=np.float32))
    noise = rng.standard_normal((3, 8)).astype(np.float32)  # descriptions that say nothing
    result = taxonomy_nested_cv(
        X,
        labels,
        Taxonomy(NODES),
        noise / np.linalg.norm(noise, axis=1, keepdims=True),
        grid={"weight_linear": (0.0, 1.0), "weight_description": (0.0,)},
        n_splits=5,
        inner_splits=3,
    )
    assert result["folds"] == 5 and result["inner_folds"] == 3
    assert result["chosen"] == [{"weight_linear": 1.0, "weight_description": 0.0}] * 5
    assert result["pillar_top1_accuracy"] == pytest.approx(1.0)
    assert result["leaf_recall@3"] == pytest.approx(1.0)


def test_taxonomy_prior_in_words_names_the_label_whose_description_a_paper_uses():
    """Even when the embeddings carry nothing (random vectors) and no training paper
    used the words, a paper that uses a label description's words ("numeric
    precision", "binary") gets that label first: the description prior is also
    measured in TF-IDF space, with a trust learnt from how often the nearest
    description is a training paper's own label."""
    labels = ("quant", "mamba", "rl")
    descriptions = (
        "Quantization. Lower numeric precision: int4 weights, ternary or binary quantization.",
        "Transformer alternatives. State-space models such as Mamba with linear-time inference.",
        "Reinforcement learning. Post-training with rewards from online rollouts.",
    )
    phrases = [
        "int4 ternary quantization of weights",
        "mamba state-space linear-time backbone",
        "online rollouts reward post-training",
    ]
    rng = np.random.default_rng(0)
    texts, Y = [], []
    for i in range(24):
        k = i % 3
        texts.append(f"paper {i}: we study {phrases[k]} for robots")
        Y.append(np.eye(3)[k])

    def noise(n):
        v = rng.standard_normal((n, 16)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    model = TaxonomyClassifier(labels=labels, label_vectors=noise(3), label_texts=descriptions).fit(
        PaperSet(texts, noise(24)), np.array(Y)
    )
    assert model.keyword_trust_ > 0.5
    query = PaperSet(["lower numeric precision with binary weights"], noise(1))
    scores = model.predict_proba(query)[0]
    assert labels[int(scores.argmax())] == "quant"
    without_words = TaxonomyClassifier(labels=labels, label_vectors=noise(3), label_texts=()).fit(
        PaperSet(texts, noise(24)), np.array(Y)
    )
    assert without_words.keyword_trust_ == 0.0
    assert scores.max() - np.median(scores) > 0.2


def test_calibration_reports_brier_and_the_share_relevant_per_band():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9, 0.6, 0.6])
    result = calibration(y, p)
    assert result["brier"] == pytest.approx(np.mean((p - y) ** 2))
    bands = {(b["from"], b["to"]): b for b in result["bands"]}
    assert bands[(0.0, 0.2)]["papers"] == 2 and bands[(0.0, 0.2)]["relevant"] == 0.0
    assert bands[(0.5, 0.8)]["relevant"] == pytest.approx(0.5)
    assert bands[(0.8, 1.0)]["papers"] == 2 and bands[(0.8, 1.0)][
        "mean_probability"
    ] == pytest.approx(0.9)
    assert bands[(0.2, 0.5)]["papers"] == 0 and bands[(0.2, 0.5)]["relevant"] is None


def test_relevance_is_calibrated_on_the_stream_rows_not_on_always_relevant_seeds():
    """Survey papers outside the stream are all relevant; counting them in the
    calibration made every probability too high for papers that arrive from the
    stream, where most papers on the topic are not listed (here 1 in 6)."""
    rng = np.random.default_rng(0)

    def papers(n, on_topic):
        centre = np.eye(1, 16, 0 if on_topic else 1, dtype=np.float32)[0]
        v = centre + 0.5 * rng.standard_normal((n, 16)).astype(np.float32)
        words = "efficient vla token pruning" if on_topic else "galaxy survey spectra"
        return [f"{words} {rng.integers(1000)}" for _ in range(n)], v / np.linalg.norm(
            v, axis=1, keepdims=True
        )

    def stream(relevant, unlisted, off_topic):
        parts = [papers(relevant, True), papers(unlisted, True), papers(off_topic, False)]
        X = PaperSet([t for texts, _ in parts for t in texts], np.vstack([v for _, v in parts]))
        return X, np.array([1] * relevant + [0] * (unlisted + off_topic))

    X_stream, y_stream = stream(10, 50, 340)
    seed_texts, seed_vectors = papers(60, True)
    X = PaperSet.concat(X_stream, PaperSet(seed_texts, seed_vectors))
    y = np.concatenate([y_stream, np.ones(60, dtype=int)])
    in_stream = np.arange(len(y)) < len(y_stream)
    fresh, truth = stream(20, 100, 880)

    everything = RelevanceClassifier(random_state=0).fit(X, y).predict_proba(fresh)[:, 1]
    stream_only = (
        RelevanceClassifier(random_state=0)
        .fit(X, y, calibration_rows=in_stream)
        .predict_proba(fresh)[:, 1]
    )
    on_topic = np.arange(len(truth)) < 120
    assert (
        everything[on_topic].mean() > 0.4
    )  # says "likely" for papers that are relevant 1 time in 6
    assert abs(stream_only[on_topic].mean() - 1 / 6) < abs(everything[on_topic].mean() - 1 / 6)
    assert calibration(truth, stream_only)["brier"] < calibration(truth, everything)["brier"]
