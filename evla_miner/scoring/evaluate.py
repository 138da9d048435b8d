"""``evla eval``: how good the classifier is, measured the way it is used.

(a) Taxonomy: k-fold cross-validation over the survey's labelled papers —
    top-1 pillar accuracy, leaf recall@3 and macro-F1 over leaf labels.

(b) Weekly triage replay over the training stream. Everything published
    before the cut date is known (labels included); then, week by week (ISO
    weeks by first-version date), the ranker scores that week's records, a
    simulated reviewer reads the top K and their true labels join the training
    data before the next week. Recall@K per week = positives the reviewer saw /
    positives that week. AP and WSS@95 are computed on a static ranking of all
    post-cut records by the model trained at the cut; so is the calibration of
    its probabilities (Brier score, share relevant per probability band). Baselines
    run in the same replay: a keyword filter and TF-IDF + class-balanced linear SVM.

Leakage rules (so the replay cannot see the future):
    * a week's labels are used only after that week has been ranked, and only
      for the K records the reviewer read;
    * survey seed papers count as known only if published before the cut; a
      seed published later (70 of them are stream positives) is removed from
      the initial training data and its label arrives, like any other, only
      if the reviewer reads it in its week;
    * kNN/"nearest" anchors and TF-IDF vocabularies are fitted on the training
      data of each step only; the taxonomy descriptions contain no paper text.
Truth: a stream record is relevant when the curated positives list names it or
the survey itself contains it (5 foundation-model seeds are in the stream but
not in the efficient-VLA list).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score
from sklearn.model_selection import KFold

from ..core.progress import Reporter
from ..core.taxonomy import Taxonomy
from .estimators import (
    KeywordBaseline,
    PaperSet,
    RelevanceClassifier,
    TaxonomyClassifier,
    TfidfSvmBaseline,
)
from .training import Example, TrainingSet, description_texts, label_matrix, node_texts

DEFAULT_CUT = date(2025, 3, 31)  # a Monday; chosen before measuring: ~3 months of history
KS = (10, 20)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def wss_at(y_true: np.ndarray, scores: np.ndarray, recall: float = 0.95) -> float:
    """Work saved over sampling at a recall level: 1 - read/N - (1 - recall)."""
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(y_true[order])
    needed = int(np.ceil(recall * y_true.sum()))
    read = int(np.searchsorted(hits, needed) + 1)
    return float((len(y_true) - read) / len(y_true) - (1 - recall))


def calibration(
    y_true: np.ndarray, probability: np.ndarray, edges=(0.0, 0.2, 0.5, 0.8, 1.0)
) -> dict:
    """Are the probabilities honest? Brier score, and per probability band the
    number of papers, their mean probability and the share that is relevant."""
    bands = []
    for low, high in zip(edges[:-1], edges[1:], strict=False):
        inside = (probability >= low) & (
            (probability < high) if high < 1.0 else (probability <= high)
        )
        bands.append(
            {
                "from": low,
                "to": high,
                "papers": int(inside.sum()),
                "mean_probability": float(probability[inside].mean()) if inside.any() else None,
                "relevant": float(y_true[inside].mean()) if inside.any() else None,
            }
        )
    return {"brier": float(brier_score_loss(y_true, probability)), "bands": bands}


@dataclass
class ReplayData:
    X: PaperSet  # all papers: stream records and seeds not in the stream
    y: np.ndarray  # truth
    published: list  # date | None
    in_stream: np.ndarray  # bool
    ids: list

    @classmethod
    def from_examples(cls, X: PaperSet, examples) -> ReplayData:
        """The replay's view of training examples whose texts are already in ``X``."""
        return cls(
            X=X,
            y=np.array([int(e.positive) for e in examples]),
            published=[e.published for e in examples],
            in_stream=np.array([e.in_stream for e in examples]),
            ids=[e.id for e in examples],
        )


def replay(
    data: ReplayData,
    rankers: dict[str, Callable[[], Any]],
    cut: date = DEFAULT_CUT,
    ks: Sequence[int] = KS,
    reporter: Reporter | None = None,
) -> dict:
    """Run the weekly replay for each ranker factory; returns metrics per ranker."""
    reporter = reporter or Reporter()
    n = len(data.y)
    known = np.array(
        [
            (data.published[i] is not None and data.published[i] < cut)
            or (data.published[i] is None and not data.in_stream[i])
            for i in range(n)
        ]
    )
    future = np.array(
        [
            data.in_stream[i] and data.published[i] is not None and data.published[i] >= cut
            for i in range(n)
        ]
    )
    weeks: dict[date, list[int]] = {}
    for i in np.flatnonzero(future):
        weeks.setdefault(week_start(data.published[i]), []).append(int(i))
    week_keys = sorted(weeks)
    future_idx = np.flatnonzero(future)
    results: dict[str, Any] = {
        "cut": cut.isoformat(),
        "weeks": len(week_keys),
        "weeks_with_positives": sum(1 for w in week_keys if data.y[weeks[w]].sum() > 0),
        "known_papers": int(known.sum()),
        "known_positives": int(data.y[known].sum()),
        "future_papers": int(len(future_idx)),
        "future_positives": int(data.y[future_idx].sum()),
        "rankers": {},
    }
    total_steps = len(rankers) * (1 + len(ks) * len(week_keys))
    reporter.start("replaying weeks", total=total_steps)
    for name, factory in rankers.items():
        initial = np.flatnonzero(known)
        model = factory()
        fit_params = (
            {"calibration_rows": data.in_stream[initial]}
            if isinstance(model, RelevanceClassifier)
            else {}
        )
        model.fit(data.X.subset(initial), data.y[initial], **fit_params)
        static = model.decision_function(data.X.subset(future_idx))
        metrics: dict[str, Any] = {
            "ap": float(average_precision_score(data.y[future_idx], static)),
            "wss95": wss_at(data.y[future_idx], np.asarray(static, dtype=float)),
        }
        if hasattr(model, "predict_proba"):
            metrics["calibration"] = calibration(
                data.y[future_idx], model.predict_proba(data.X.subset(future_idx))[:, 1]
            )
        reporter.advance()
        for k in ks:
            train: list[int] = list(initial)
            per_week = []
            seen_total = pos_total = 0
            for w in week_keys:
                idx = np.array(weeks[w])
                model = factory().fit(data.X.subset(np.array(train)), data.y[np.array(train)])
                scores = np.asarray(model.decision_function(data.X.subset(idx)), dtype=float)
                top = idx[np.argsort(-scores, kind="stable")[:k]]
                positives = int(data.y[idx].sum())
                seen = int(data.y[top].sum())
                if positives:
                    per_week.append(seen / positives)
                seen_total += seen
                pos_total += positives
                train.extend(int(i) for i in top)  # the reviewer's labels become decisions
                reporter.advance()
            metrics[f"recall@{k}_week_mean"] = (
                float(np.mean(per_week)) if per_week else float("nan")
            )
            metrics[f"recall@{k}_week_min"] = float(np.min(per_week)) if per_week else float("nan")
            metrics[f"recall@{k}_overall"] = seen_total / pos_total if pos_total else float("nan")
            metrics[f"missed@{k}"] = pos_total - seen_total
        results["rankers"][name] = metrics
    reporter.finish()
    return results


def default_rankers(relevance_params: dict | None = None) -> dict:
    """The evla ranker (with ``relevance_params``, e.g. the node-description priors) and the
    baselines."""
    return {
        "evla (emb+tfidf+kNN+descr.+SVM)": lambda: RelevanceClassifier(**(relevance_params or {})),
        "keyword VLA/vision-language-action": KeywordBaseline,
        "tfidf 1-2gram + balanced LinearSVC": TfidfSvmBaseline,
    }


# --- taxonomy cross-validation ------------------------------------------------------------


def taxonomy_cv(
    X: PaperSet,
    example_labels: list[list[str]],
    taxonomy: Taxonomy,
    description_vectors: np.ndarray,
    params: dict | None = None,
    n_splits: int = 10,
    random_state: int = 0,
) -> dict:
    """Cross-validated taxonomy metrics over labelled survey papers."""
    labels = taxonomy.leaves

    def pillar_of(node_id):
        root = taxonomy.pillar(node_id)
        return root if taxonomy.is_pillar(root) else None

    keep = [i for i, labs in enumerate(example_labels) if labs]
    X = X.subset(np.array(keep))
    example_labels = [example_labels[i] for i in keep]
    Y = label_matrix(
        [
            Example(id=str(i), text="", positive=True, labels=labs)
            for i, labs in enumerate(example_labels)
        ],
        taxonomy,
    )
    scores = np.zeros_like(Y)
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    for train, test in folds.split(Y):
        model = TaxonomyClassifier(
            labels=tuple(labels),
            label_vectors=description_vectors,
            label_texts=tuple(description_texts(taxonomy)),
            **(params or {}),
        )
        model.fit(X.subset(train), Y[train])
        scores[test] = model.predict_proba(X.subset(test))

    pillar_hits = pillar_n = 0
    recalls = []
    for i, true in enumerate(example_labels):
        true_pillars = {pillar_of(label) for label in true} - {None}
        order = np.argsort(-scores[i])
        if true_pillars:
            pillar_scores: dict[str, float] = {}
            for j, label in enumerate(labels):
                p = pillar_of(label)
                if p:
                    pillar_scores[p] = max(pillar_scores.get(p, 0.0), scores[i, j])
            best = max(pillar_scores, key=lambda p: pillar_scores[p])
            pillar_hits += best in true_pillars
            pillar_n += 1
        top3 = [labels[j] for j in order[:3]]
        covered = set().union(*(taxonomy.ancestors(label) for label in top3))
        recalls.append(np.mean([label in covered for label in true]))
    # macro-F1 over leaf labels: predicted = the best label plus any scoring >= 0.4
    true_leaf = (Y >= 1.0).astype(int)
    predicted = (scores >= 0.4).astype(int)
    predicted[np.arange(len(scores)), scores.argmax(axis=1)] = 1
    support = true_leaf.sum(axis=0) > 0
    macro_f1 = f1_score(
        true_leaf[:, support], predicted[:, support], average="macro", zero_division=0
    )
    return {
        "papers": len(example_labels),
        "folds": n_splits,
        "pillar_top1_accuracy": pillar_hits / pillar_n if pillar_n else float("nan"),
        "pillar_papers": pillar_n,
        "leaf_recall@3": float(np.mean(recalls)),
        "macro_f1": float(macro_f1),
        "labels_with_support": int(support.sum()),
    }


# --- the whole evaluation -------------------------------------------------------------------


def run_eval(
    training: TrainingSet,
    cut: date = DEFAULT_CUT,
    ks: Sequence[int] = KS,
    replay_rankers: dict | None = None,
    taxonomy_params: dict | None = None,
    reporter: Reporter | None = None,
) -> dict:
    """Both evaluations on a training set of the seed files and the training stream (no
    decisions)."""
    reporter = reporter or Reporter()
    examples = training.examples
    X = training.papers
    taxonomy = taxonomy_cv(
        X,
        [e.labels for e in examples],
        training.taxonomy,
        training.description_vectors,
        taxonomy_params,
    )
    data = ReplayData.from_examples(X, examples)
    prior = {
        "prior_texts": tuple(node_texts(training.taxonomy)),
        "prior_vectors": training.node_vectors,
    }
    triage = replay(data, replay_rankers or default_rankers(prior), cut, ks, reporter)
    return {"taxonomy": taxonomy, "replay": triage}
