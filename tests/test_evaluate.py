"""The evaluation harness on tiny synthetic data: metric arithmetic and, above all,
that the weekly replay never lets a ranker see labels it could not have had."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from evla_miner.core.taxonomy import Taxonomy
from evla_miner.scoring.estimators import (
    KeywordBaseline,
    PaperSet,
    RelevanceClassifier,
    TaxonomyClassifier,
    TfidfSvmBaseline,
)
from evla_miner.scoring.evaluate import (
    ReplayData,
    calibration,
    replay,
    taxonomy_cv,
    week_start,
    wss_at,
)


def test_week_start_is_monday():
    assert week_start(date(2025, 4, 3)) == date(2025, 3, 31)
    assert week_start(date(2025, 3, 31)) == date(2025, 3, 31)


def test_wss_at_95():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    perfect = np.arange(10, 0, -1, dtype=float)
    assert wss_at(y, perfect) == pytest.approx((10 - 2) / 10 - 0.05)
    worst = -perfect
    assert wss_at(y, worst) == pytest.approx(0 - 0.05)


class SpyRanker:
    """Scores by a fixed per-paper number and records what it was trained on."""

    log: list = []

    def __init__(self, scores):
        self.scores = scores

    def fit(self, X, y):
        SpyRanker.log.append(({t for t in X.texts}, dict(zip(X.texts, y, strict=True))))
        return self

    def decision_function(self, X):
        return np.array([self.scores[t] for t in X.texts])


def make_data():
    """Two known weeks and three replay weeks of 5 papers; text = 'p<i>'."""
    cut = date(2025, 3, 31)
    texts, y, published, in_stream = [], [], [], []
    for week in range(-2, 3):
        for j in range(5):
            i = len(texts)
            texts.append(f"p{i}")
            y.append(int(j < 2))  # two positives a week
            published.append(cut + timedelta(days=7 * week + j))
            in_stream.append(True)
    # a survey seed published after the cut that is not in the stream: must never be trained on
    texts.append("late-seed")
    y.append(1)
    published.append(cut + timedelta(days=20))
    in_stream.append(False)
    # a seed without a date, not in the stream: known
    texts.append("old-seed")
    y.append(1)
    published.append(None)
    in_stream.append(False)
    X = PaperSet(texts, np.eye(len(texts), dtype=np.float32))
    return cut, ReplayData(
        X=X, y=np.array(y), published=published, in_stream=np.array(in_stream), ids=texts
    )


def test_replay_uses_only_known_and_reviewed_labels():
    cut, data = make_data()
    # the ranker puts one positive first and the other positive last each week
    scores = {t: 0.0 for t in data.X.texts}
    for i, t in enumerate(data.X.texts[:25]):
        scores[t] = {0: 10.0, 1: -10.0}.get(i % 5, float(i % 5))
    SpyRanker.log = []
    result = replay(data, {"spy": lambda: SpyRanker(scores)}, cut=cut, ks=(2,))
    m = result["rankers"]["spy"]
    assert (
        result["weeks"] == 3 and result["future_positives"] == 6 and result["known_positives"] == 5
    )
    assert m["recall@2_week_mean"] == pytest.approx(0.5)  # sees 1 of 2 positives each week
    assert m["missed@2"] == 3
    known = {f"p{i}" for i in range(10)} | {"old-seed"}
    static_fit, *weekly_fits = SpyRanker.log
    assert static_fit[0] == known
    assert len(weekly_fits) == 3
    for week, (trained, _) in enumerate(weekly_fits):
        assert "late-seed" not in trained
        future = {f"p{i}" for i in range(10 + 5 * week, 25)}
        assert not trained & future  # nothing from this week or later
        reviewed = trained - known
        assert len(reviewed) == 2 * week  # only the top K of earlier weeks
        assert all(scores[t] >= 3.0 for t in reviewed)


def test_replay_with_real_baselines_on_tiny_data():
    cut, data = make_data()
    texts = []
    for i, label in enumerate(data.y):
        texts.append(
            f"efficient VLA token pruning paper {i}" if label else f"galaxy survey number {i}"
        )
    data.X = PaperSet(texts, data.X.vectors)
    result = replay(data, {"kw": KeywordBaseline, "svm": TfidfSvmBaseline}, cut=cut, ks=(2, 3))
    for name in ("kw", "svm"):
        m = result["rankers"][name]
        assert m["recall@2_week_mean"] == pytest.approx(1.0)
        assert m["ap"] == pytest.approx(1.0)


def test_taxonomy_cv_metrics_on_separable_data():
    nodes = [
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
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8, dtype=np.float32)
    vectors, labels, texts = [], [], []
    for i in range(30):
        k = i % 3
        v = centres[k] + 0.05 * rng.standard_normal(8)
        vectors.append(v / np.linalg.norm(v))
        labels.append([["model.a"], ["data.b"], ["foundation"]][k])
        texts.append(["alpha words", "beta words", "gamma words"][k] + f" {i}")
    X = PaperSet(texts + ["unlabelled"], np.array(vectors + [centres[0]], dtype=np.float32))
    result = taxonomy_cv(
        X, labels + [[]], Taxonomy(nodes), np.eye(3, 8, dtype=np.float32), n_splits=5
    )
    assert result["papers"] == 30 and result["pillar_papers"] == 20
    assert result["pillar_top1_accuracy"] == pytest.approx(1.0)
    assert result["leaf_recall@3"] == pytest.approx(1.0)
    assert result["macro_f1"] > 0.9


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
