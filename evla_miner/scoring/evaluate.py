"""``evla eval``: how good the classifier is, measured the way it is used.

(a) Taxonomy: k-fold cross-validation over the survey's labelled papers. Three
    readings of "pillar top-1", because the seed files list a paper's labels in
    taxonomy order (model < training < data), not by importance:
    ``pillar_top1_accuracy`` — the pillar of the first entry of ``categories`` (what
    ``evla predict`` shows) is one of the paper's pillars; ``pillar_strict_accuracy``
    — it is the pillar of the paper's first listed label; ``pillar_best_accuracy`` —
    the best-scoring pillar (leaves' max) is one of the paper's pillars. Also leaf
    recall@3 (true labels covered by the first three leaves and their ancestors) and
    macro-F1 over leaf labels.

(b) Relevance: the rolling-origin protocol of ``rolling`` (six monthly cut dates,
    the weeks before each cut for training and model choice, the 8 weeks after for
    testing only; weekly replay with reviewer feedback and static rankings; both
    curators' truths), for the evla ranker beside a keyword filter and TF-IDF +
    class-balanced linear SVM (the family ASReview and arxiv-sanity use).

Leakage rules (``rolling`` enforces them; tests/test_evaluate.py checks them): a
test week's labels are used only after that week has been ranked, and only for the
records the reviewer read; a survey paper published after a cut is unknown at that
cut; TF-IDF vocabularies and kNN anchors are fitted on each step's training rows;
the taxonomy descriptions contain no paper text.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date

import numpy as np
from sklearn.metrics import f1_score
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
from .rolling import DEFAULT_CUTS, HORIZON_WEEKS, RollingData, paired, rolling_eval
from .training import Example, TrainingSet, description_texts, label_matrix, node_texts

EVLA = "evla"
KEYWORD_BASELINE = "keyword"
SVM_BASELINE = "tfidf+svm"
EVLA_CHOSEN = "evla-chosen"
RANKER_NAMES = {
    EVLA: "evla (embeddings + TF-IDF + kNN + descriptions, stacked)",
    KEYWORD_BASELINE: "keyword VLA / vision-language-action",
    SVM_BASELINE: "TF-IDF 1-2-gram + balanced LinearSVC (C 0.5)",
    EVLA_CHOSEN: "evla with weight_svm, C_tfidf, k chosen per cut on its validation weeks",
}


# evla's own settings, as a grid chosen cut by cut on the validation weeks (``--choose-settings``)
SETTINGS_GRID = {"weight_svm": (0.25, 0.5, 0.75), "C_tfidf": (1.0, 10.0), "k_neighbours": (3, 7)}


def default_rankers(relevance_params: dict | None = None, choose_settings: bool = False) -> dict:
    """The evla ranker (with ``relevance_params``, e.g. the node-description priors) and the
    two baselines, as factories. ``choose_settings`` adds evla as a grid over
    ``SETTINGS_GRID``, each cut using the setting its validation weeks ranked best: evla's
    fixed defaults were set in single-cut rounds whose weeks overlap the rolling test windows,
    and this row says what they are worth when chosen by the protocol instead."""
    params = relevance_params or {}
    rankers: dict = {
        EVLA: lambda: RelevanceClassifier(**params),
        KEYWORD_BASELINE: KeywordBaseline,
        SVM_BASELINE: TfidfSvmBaseline,
    }
    if choose_settings:
        rankers[EVLA_CHOSEN] = {
            ", ".join(f"{k}={v}" for k, v in zip(SETTINGS_GRID, values, strict=True)): (
                lambda values=values: RelevanceClassifier(
                    **dict(zip(SETTINGS_GRID, values, strict=True)), **params
                )
            )
            for values in itertools.product(*SETTINGS_GRID.values())
        }
    return rankers


# --- taxonomy cross-validation ------------------------------------------------------------


TAXONOMY_GRID = {"weight_description": (3.0, 6.0, 12.0), "C": (0.5, 2.0, 8.0)}


def _labelled(X: PaperSet, example_labels: list[list[str]], taxonomy: Taxonomy):
    """The labelled papers, their labels and their 0/1 matrix over the leaves."""
    keep = [i for i, labs in enumerate(example_labels) if labs]
    labels = [example_labels[i] for i in keep]
    Y = label_matrix(
        [Example(id=str(i), text="", positive=True, labels=labs) for i, labs in enumerate(labels)],
        taxonomy,
    )
    return X.subset(np.array(keep)), labels, Y


def _cv_scores(
    X: PaperSet,
    Y: np.ndarray,
    taxonomy: Taxonomy,
    description_vectors: np.ndarray,
    params: dict | None,
    folds,
) -> np.ndarray:
    """Out-of-fold leaf scores of a TaxonomyClassifier with ``params``."""
    scores = np.zeros_like(Y)
    for train, test in folds.split(Y):
        model = _taxonomy_model(taxonomy, description_vectors, params)
        scores[test] = model.fit(X.subset(train), Y[train]).predict_proba(X.subset(test))
    return scores


def _taxonomy_model(
    taxonomy: Taxonomy, description_vectors: np.ndarray, params: dict | None
) -> TaxonomyClassifier:
    return TaxonomyClassifier(
        labels=tuple(taxonomy.leaves),
        label_vectors=description_vectors,
        label_texts=tuple(description_texts(taxonomy)),
        **(params or {}),
    )


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
    X, example_labels, Y = _labelled(X, example_labels, taxonomy)
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    scores = _cv_scores(X, Y, taxonomy, description_vectors, params, folds)
    return {
        "papers": len(example_labels),
        "folds": n_splits,
        **taxonomy_metrics(scores, example_labels, Y, taxonomy),
    }


def taxonomy_nested_cv(
    X: PaperSet,
    example_labels: list[list[str]],
    taxonomy: Taxonomy,
    description_vectors: np.ndarray,
    grid: dict | None = None,
    n_splits: int = 10,
    inner_splits: int = 5,
    random_state: int = 0,
) -> dict:
    """Nested CV: in each outer fold, the setting of ``grid`` (default ``TAXONOMY_GRID``)
    with the best mean of pillar top-1 and leaf recall@3 in an inner CV over the outer
    training papers is refitted on them and scores the outer test papers, which chose
    nothing. What the taxonomy numbers are worth when every setting is chosen that way."""
    grid = grid or TAXONOMY_GRID
    X, example_labels, Y = _labelled(X, example_labels, taxonomy)
    settings = [dict(zip(grid, v, strict=True)) for v in itertools.product(*grid.values())]
    scores = np.zeros_like(Y)
    chosen = []
    outer = KFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    inner = KFold(n_splits=inner_splits, shuffle=True, random_state=random_state)
    for train, test in outer.split(Y):
        inner_data = (X.subset(train), Y[train], [example_labels[i] for i in train])
        criteria = [
            _inner_criterion(*inner_data, taxonomy, description_vectors, params, inner)
            for params in settings
        ]
        best = settings[int(np.argmax(criteria))]  # ties keep the grid's order
        chosen.append(best)
        model = _taxonomy_model(taxonomy, description_vectors, best)
        scores[test] = model.fit(X.subset(train), Y[train]).predict_proba(X.subset(test))
    return {
        "papers": len(example_labels),
        "folds": n_splits,
        "inner_folds": inner_splits,
        "grid": {k: list(v) for k, v in grid.items()},
        "chosen": chosen,
        **taxonomy_metrics(scores, example_labels, Y, taxonomy),
    }


def _inner_criterion(
    X: PaperSet,
    Y: np.ndarray,
    example_labels: list[list[str]],
    taxonomy: Taxonomy,
    description_vectors: np.ndarray,
    params: dict,
    folds,
) -> float:
    """Mean of pillar top-1 and leaf recall@3 of ``params`` in a CV over these papers."""
    scores = _cv_scores(X, Y, taxonomy, description_vectors, params, folds)
    m = taxonomy_metrics(scores, example_labels, Y, taxonomy)
    return (m["pillar_top1_accuracy"] + m["leaf_recall@3"]) / 2


def taxonomy_metrics(
    scores: np.ndarray, example_labels: list[list[str]], Y: np.ndarray, taxonomy: Taxonomy
) -> dict:
    """Pillar top-1 (three readings), leaf recall@3 and macro-F1 of out-of-fold scores."""
    labels = taxonomy.leaves

    def pillar_of(node_id):
        root = taxonomy.pillar(node_id)
        return root if taxonomy.is_pillar(root) else None

    leaf_set = set(labels)
    hits = {"first": 0, "strict": 0, "best": 0}
    pillar_n = 0
    recalls = []
    for i, true in enumerate(example_labels):
        true_pillars = [p for p in (pillar_of(label) for label in true) if p]
        ranked = taxonomy.rank_nodes(scores[i])
        if true_pillars:
            first = pillar_of(ranked[0]["id"])
            pillar_scores: dict[str, float] = {}
            for j, label in enumerate(labels):
                p = pillar_of(label)
                if p:
                    pillar_scores[p] = max(pillar_scores.get(p, 0.0), scores[i, j])
            best = max(pillar_scores, key=lambda p: pillar_scores[p])
            hits["first"] += first in true_pillars
            hits["strict"] += first == true_pillars[0]
            hits["best"] += best in true_pillars
            pillar_n += 1
        top3 = [e["id"] for e in ranked if e["id"] in leaf_set][:3]
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
        **{
            f"pillar_{name}_accuracy": hits[key] / pillar_n if pillar_n else float("nan")
            for name, key in (("top1", "first"), ("strict", "strict"), ("best", "best"))
        },
        "pillar_papers": pillar_n,
        "leaf_recall@3": float(np.mean(recalls)),
        "macro_f1": float(macro_f1),
        "labels_with_support": int(support.sum()),
    }


# --- the whole evaluation -------------------------------------------------------------------


def run_eval(
    training: TrainingSet,
    cuts: Sequence[date] = DEFAULT_CUTS,
    horizon: int = HORIZON_WEEKS,
    replay: bool = True,
    rankers: dict | None = None,
    taxonomy_params: dict | None = None,
    reporter: Reporter | None = None,
    choose_settings: bool = False,
) -> dict:
    """Both evaluations on a training set of the seed files and the training stream (no
    decisions). ``replay=False`` skips the weekly replay (one fit per ranker and cut
    instead of nine): what ``evla train`` records."""
    reporter = reporter or Reporter()
    examples = training.examples
    taxonomy = taxonomy_cv(
        training.papers,
        [e.labels for e in examples],
        training.taxonomy,
        training.description_vectors,
        taxonomy_params,
    )
    prior = {
        "prior_texts": tuple(node_texts(training.taxonomy)),
        "prior_vectors": training.node_vectors,
    }
    rankers = rankers or default_rankers(prior, choose_settings)
    if choose_settings:
        taxonomy["nested"] = taxonomy_nested_cv(
            training.papers,
            [e.labels for e in examples],
            training.taxonomy,
            training.description_vectors,
        )
    relevance = rolling_eval(
        rankers, RollingData.from_training(training), cuts, horizon, replay, reporter
    )
    relevance["names"] = {name: RANKER_NAMES.get(name, name) for name in rankers}
    if EVLA in rankers:
        relevance["evla_minus"] = {
            other: {
                key: paired(
                    relevance["rankers"][EVLA]["cuts"], relevance["rankers"][other]["cuts"], key
                )
                for key in COMPARED
                if key.split(".")[0] in relevance["rankers"][EVLA]["cuts"][0]
            }
            for other in rankers
            if other != EVLA
        }
    return {"taxonomy": taxonomy, "relevance": relevance}


COMPARED = (
    "replay.full.recall@10",
    "static.full.ap",
    "static.related.ap",
    "static.full.recall@10",
    "static.full.recall@10_2wk",
)


def summary_line(result: dict) -> str:
    """One sentence the README can quote: evla and the SVM baseline, mean ± spread over cuts."""
    rel = result["relevance"]
    summaries = {name: r["summary"] for name, r in rel["rankers"].items()}

    def cell(name: str, key: str) -> str:
        m = summaries.get(name, {}).get(key)
        return f"{m['mean']:.3f} ± {m['std']:.3f}" if m else "n/a"

    key = (
        "replay.full.recall@10"
        if "replay.full.recall@10" in summaries.get(EVLA, {})
        else ("static.full.recall@10")
    )
    label = "replay recall@10/week" if key.startswith("replay") else "static recall@10/week"
    return (
        f"rolling evaluation, {len(rel['cuts'])} cuts x {rel['horizon_weeks']} weeks: "
        f"{label} evla {cell(EVLA, key)} vs TF-IDF+SVM {cell(SVM_BASELINE, key)}; "
        f"AP evla {cell(EVLA, 'static.full.ap')} vs {cell(SVM_BASELINE, 'static.full.ap')}; "
        f"second-curator AP evla {cell(EVLA, 'static.related.ap')} vs "
        f"{cell(SVM_BASELINE, 'static.related.ap')}; taxonomy pillar top-1 "
        f"{result['taxonomy']['pillar_top1_accuracy']:.3f}, leaf recall@3 "
        f"{result['taxonomy']['leaf_recall@3']:.3f}"
    )
