"""Every scikit-learn estimator evla_miner defines keeps the scikit-learn API contract.

For each estimator (found by importing every module and collecting the subclasses of
``sklearn.base.BaseEstimator`` defined there, so a new one without a case here fails
``test_every_estimator_has_a_case``):

- ``sklearn.base.clone`` works, and a clone of a fitted estimator is unfitted and, fitted
  on the same data, scores the same;
- ``get_params`` names exactly the ``__init__`` arguments, and ``set_params`` on a default
  instance reproduces them (the ``__init__``-only-stores-parameters rule);
- ``fit`` returns ``self`` and leaves the parameters unchanged;
- every scoring method (``predict``, ``predict_proba``, ``decision_function``,
  ``transform``, whichever exist) raises ``NotFittedError`` before ``fit``.

Why explicit checks and not ``sklearn.utils.estimator_checks.parametrize_with_checks``:
the estimators take a ``PaperSet`` (texts and embeddings of the same papers), not an
array, so scikit-learn's common checks fail at their first ``fit`` on a random array.
The data below is shaped like what ``scoring.training`` / ``scoring.model.fit_model``
pass: title-and-abstract texts, L2-normalised float32 embeddings, the taxonomy
descriptions as prior positives, a 0/1 label matrix over the leaves.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

import evla_miner
from evla_miner.scoring.estimators import (
    KeywordBaseline,
    PaperSet,
    RelevanceClassifier,
    StableTfidfVectorizer,
    TaxonomyClassifier,
    TfidfSvmBaseline,
)

SCORING_METHODS = ("predict", "predict_proba", "decision_function", "transform")
DIM = 32  # the real embeddings have 384 dimensions; the estimators do not care

ON_TOPIC = [
    "Token pruning for efficient vision-language-action models",
    "Quantized VLA policies: int4 weights for robot manipulation",
    "Mamba state-space backbones for fast VLA inference",
    "Action chunking and parallel decoding in vision-language-action models",
]
OFF_TOPIC = [
    "Galaxy survey spectra and redshift estimation",
    "Dark matter halos in cosmological simulations",
    "Protein folding with graph neural networks",
    "Spectral methods for fluid dynamics",
]
LABEL_TEXTS = (
    "Token pruning. Dropping or merging visual tokens to cut the cost of a VLA.",
    "Quantization. Lower numeric precision: int4 weights, ternary or binary quantization.",
    "Transformer alternatives. State-space models such as Mamba with linear-time inference.",
)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def papers(n_on: int = 12, n_off: int = 12, seed: int = 0) -> tuple[PaperSet, np.ndarray]:
    """``n_on`` on-topic papers (label 1) then ``n_off`` off-topic ones (label 0), as
    ``paper_text`` builds them (title, newline, abstract), with embeddings clustered by
    topic."""
    rng = np.random.default_rng(seed)
    topic = rng.standard_normal(DIM)
    texts, vectors = [], []
    for i in range(n_on + n_off):
        on = i < n_on
        title = (ON_TOPIC if on else OFF_TOPIC)[i % 4]
        abstract = f"We study {title.lower()} and report results on benchmark {i % 3}. " + (
            "The robot policy runs faster." if on else "The method is evaluated on data."
        )
        texts.append(f"{title}\n{abstract}")
        vectors.append((topic if on else -topic) + 0.8 * rng.standard_normal(DIM))
    return PaperSet(texts, _unit_rows(np.array(vectors))), np.array([1] * n_on + [0] * n_off)


def label_matrix(n: int) -> np.ndarray:
    """A 0/1 matrix over the three leaves, one label per paper (some with two)."""
    Y = np.zeros((n, len(LABEL_TEXTS)))
    Y[np.arange(n), np.arange(n) % len(LABEL_TEXTS)] = 1
    Y[::5, 0] = 1
    return Y


@dataclass
class Case:
    """How to build an estimator and what to fit it on."""

    make: Callable[[], BaseEstimator]
    fit_args: Callable[[], tuple]
    score_on: Callable[[], object]
    fit_kwargs: Callable[[], dict] = dict


def relevance() -> RelevanceClassifier:
    rng = np.random.default_rng(1)
    return RelevanceClassifier(
        prior_texts=LABEL_TEXTS,
        prior_vectors=_unit_rows(rng.standard_normal((len(LABEL_TEXTS), DIM))),
        n_folds=3,
    )


def taxonomy() -> TaxonomyClassifier:
    rng = np.random.default_rng(2)
    return TaxonomyClassifier(
        labels=("token_pruning", "quantization", "ssm"),
        label_vectors=_unit_rows(rng.standard_normal((len(LABEL_TEXTS), DIM))),
        label_texts=LABEL_TEXTS,
    )


def _labelled() -> tuple[PaperSet, np.ndarray]:
    X, _ = papers(12, 0)
    return X, label_matrix(len(X))


CASES: dict[type, Case] = {
    StableTfidfVectorizer: Case(
        make=lambda: StableTfidfVectorizer(ngram_range=(1, 2), stop_words="english"),
        fit_args=lambda: (papers()[0].texts,),
        score_on=lambda: papers(seed=5)[0].texts,
    ),
    RelevanceClassifier: Case(
        make=relevance,
        fit_args=papers,
        # calibrated on the rows drawn like new papers, as fit_model does
        fit_kwargs=lambda: {"calibration_rows": np.arange(24) % 2 == 0},
        score_on=lambda: papers(3, 3, seed=5)[0],
    ),
    TaxonomyClassifier: Case(
        make=taxonomy, fit_args=_labelled, score_on=lambda: papers(3, 3, seed=5)[0]
    ),
    KeywordBaseline: Case(
        make=KeywordBaseline, fit_args=papers, score_on=lambda: papers(3, 3, seed=5)[0]
    ),
    TfidfSvmBaseline: Case(
        make=TfidfSvmBaseline, fit_args=papers, score_on=lambda: papers(3, 3, seed=5)[0]
    ),
}


def project_estimators() -> set[type]:
    """Every ``BaseEstimator`` subclass defined in an evla_miner module."""
    found = set()
    for info in pkgutil.walk_packages(evla_miner.__path__, "evla_miner."):
        if info.name.endswith("__main__"):  # runs the CLI on import
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and obj.__module__ == module.__name__
            ):
                found.add(obj)
    return found


def same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)


def same_params(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


def scores(estimator, X) -> dict[str, np.ndarray]:
    out = {}
    for name in SCORING_METHODS:
        if hasattr(estimator, name):
            result = getattr(estimator, name)(X)
            out[name] = result.toarray() if hasattr(result, "toarray") else np.asarray(result)
    return out


def test_every_estimator_has_a_case():
    missing = {cls.__qualname__ for cls in project_estimators() - CASES.keys()}
    assert not missing, f"estimators without a conformance case in this file: {sorted(missing)}"


@pytest.fixture(params=list(CASES), ids=lambda cls: cls.__name__)
def case(request) -> Case:
    return CASES[request.param]


def test_unfitted_scoring_raises_not_fitted(case):
    estimator = case.make()
    methods = [name for name in SCORING_METHODS if hasattr(estimator, name)]
    assert methods, "an estimator with no scoring method"
    for name in methods:
        with pytest.raises(NotFittedError):
            getattr(estimator, name)(case.score_on())


def test_get_params_set_params_round_trip(case):
    estimator = case.make()
    params = estimator.get_params(deep=False)
    init_args = [
        name
        for name, p in inspect.signature(type(estimator).__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    assert sorted(params) == sorted(init_args)
    fresh = type(estimator)()
    assert fresh.set_params(**params) is fresh
    assert same_params(fresh.get_params(deep=False), params)
    for name, value in params.items():  # stored as given, not copied or validated
        assert getattr(fresh, name) is value


def test_fit_returns_self_and_keeps_params(case):
    estimator = case.make()
    before = estimator.get_params(deep=False)
    assert estimator.fit(*case.fit_args(), **case.fit_kwargs()) is estimator
    assert same_params(estimator.get_params(deep=False), before)
    out = scores(estimator, case.score_on())
    assert out and all(len(v) == len(case.score_on()) for v in out.values())


def test_clone(case):
    estimator = case.make()
    unfitted = clone(estimator)
    assert unfitted is not estimator and type(unfitted) is type(estimator)
    assert same_params(unfitted.get_params(deep=False), estimator.get_params(deep=False))

    estimator.fit(*case.fit_args(), **case.fit_kwargs())
    copy = clone(estimator)
    for name in SCORING_METHODS:  # a clone forgets the fit
        if hasattr(copy, name):
            with pytest.raises(NotFittedError):
                getattr(copy, name)(case.score_on())
    copy.fit(*case.fit_args(), **case.fit_kwargs())
    expected, got = scores(estimator, case.score_on()), scores(copy, case.score_on())
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], err_msg=name)
