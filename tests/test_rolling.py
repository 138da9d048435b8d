"""The rolling-origin protocol on tiny synthetic data: metric arithmetic and, above all,
that no ranker ever sees a label it could not have had at the time."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta

import numpy as np
import pytest

from evla_miner.scoring.estimators import KeywordBaseline, PaperSet, TfidfSvmBaseline
from evla_miner.scoring.reading import reading_depth
from evla_miner.scoring.rolling import (
    DEFAULT_CUTS,
    RollingData,
    average_precision,
    evaluate_cut,
    paired,
    recall_at,
    rolling_eval,
    select,
    week_start,
)

CUT = date(2025, 3, 31)


def test_default_cuts_are_the_first_week_of_each_month_april_to_september():
    assert DEFAULT_CUTS == tuple(
        date(2025, m, d) for m, d in ((3, 31), (4, 28), (5, 26), (6, 30), (7, 28), (9, 1))
    )
    assert all(c.weekday() == 0 for c in DEFAULT_CUTS)
    assert week_start(date(2025, 4, 3)) == date(2025, 3, 31)


def test_recall_at_k_leaves_out_rows_outside_the_truth_and_skips_weeks_without_positives():
    truth = np.array([-1, 1, 0, 1, 0])
    scores = np.array([9.0, 8.0, 7.0, 1.0, 0.0])
    assert recall_at(truth, scores, 1) == 0.5  # the -1 row on top is neither hit nor miss
    assert recall_at(truth, scores, 3) == 1.0
    assert recall_at(np.array([0, 0, -1]), np.array([1.0, 2.0, 3.0]), 2) is None
    assert average_precision(truth, scores) == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(average_precision(np.array([1, 1]), np.array([0.1, 0.2])))


def test_paired_difference_is_taken_cut_by_cut():
    a = [{"static": {"full": {"ap": x}}} for x in (0.5, 0.7, 0.6)]
    b = [{"static": {"full": {"ap": x}}} for x in (0.4, 0.7, 0.7)]
    d = paired(a, b, "static.full.ap")
    assert d["mean"] == pytest.approx(0.0) and d["wins"] == 1
    assert d["std"] == pytest.approx(np.std([0.1, 0.0, -0.1]))


def test_reading_depth_reads_until_the_expected_share_of_relevant_papers():
    depth = reading_depth([0.1, 0.9, 0.5, 0.0, 0.5], share=0.95)
    assert depth.expected_relevant == pytest.approx(2.0)
    assert depth.papers == 3  # 0.9 + 0.5 + 0.5 = 1.9 = 95% of 2.0
    assert reading_depth([0.0, 0.0]).papers == 0


class SpyRanker:
    """Scores by a fixed per-paper number and records what it was trained on."""

    log: list = []

    def __init__(self, scores):
        self.scores = scores

    def fit(self, X, y):
        SpyRanker.log.append((set(X.texts), dict(zip(X.texts, y, strict=True))))
        return self

    def decision_function(self, X):
        return np.array([self.scores[t] for t in X.texts])


def make_data(weeks_before: int = 2, weeks_after: int = 3) -> RollingData:
    """Weeks of 5 stream papers around CUT (text ``p<i>``, two positives a week, the first
    of them on the second curator's list too), a survey seed published after the cut that
    is not in the stream, and an undated seed."""
    texts, y, related, published, in_stream = [], [], [], [], []
    for week in range(-weeks_before, weeks_after):
        for j in range(5):
            texts.append(f"p{len(texts)}")
            y.append(int(j < 2))
            related.append({0: 1, 1: -1}.get(j, 0))
            published.append(CUT + timedelta(days=7 * week + j))
            in_stream.append(True)
    for text, day in (("late-seed", CUT + timedelta(days=20)), ("old-seed", None)):
        texts.append(text)
        y.append(1)
        related.append(-1)
        published.append(day)
        in_stream.append(False)
    return RollingData(
        X=PaperSet(texts, np.eye(len(texts), dtype=np.float32)),
        y=np.array(y),
        related=np.array(related),
        published=published,
        in_stream=np.array(in_stream),
        ids=texts,
    )


def one_positive_first_the_other_last(data: RollingData) -> dict:
    scores = {t: 0.0 for t in data.X.texts}
    for i, t in enumerate(data.X.texts[:25]):
        scores[t] = {0: 10.0, 1: -10.0}.get(i % 5, float(i % 5))
    return scores


def test_the_replay_trains_only_on_what_was_known_and_what_the_reviewer_read():
    data = make_data()
    scores = one_positive_first_the_other_last(data)
    SpyRanker.log = []
    result = evaluate_cut(lambda: SpyRanker(scores), data, CUT, horizon=3, review_k=2)
    assert result["test_weeks"] == 3 and result["known_positives"] == 5
    # the reviewer reads the top 2 of each week: one of its two positives
    assert result["replay"]["full"]["recall@10"] == pytest.approx(0.5)
    static_fit, *weekly_fits = SpyRanker.log
    known = {f"p{i}" for i in range(10)} | {"old-seed"}
    assert static_fit[0] == known
    assert len(weekly_fits) == 3
    for week, (trained, _) in enumerate(weekly_fits):
        assert "late-seed" not in trained
        assert not trained & {f"p{i}" for i in range(10 + 5 * week, 25)}  # nothing ahead
        reviewed = trained - known
        assert len(reviewed) == 2 * week  # only the top 2 of the weeks before
        assert all(scores[t] >= 3.0 for t in reviewed)


def test_the_second_curators_truth_drops_survey_only_positives_from_the_queues():
    data = make_data()
    scores = one_positive_first_the_other_last(data)
    static = evaluate_cut(lambda: SpyRanker(scores), data, CUT, horizon=3, replay=False)["static"]
    assert static["full"]["recall@10"] == pytest.approx(1.0)
    # under the full truth the second positive is ranked last of five: recall@3 would be 1/2;
    # under the related truth that paper (j == 1) is not in the queue, the first is on top
    assert static["full"]["positives"] == 6 and static["related"]["positives"] == 3
    assert static["related"]["ap"] == pytest.approx(1.0)
    assert static["full"]["ap"] < 1.0


def test_a_grid_is_chosen_on_the_weeks_before_the_cut_and_never_sees_the_test_weeks():
    data = make_data(weeks_before=4)
    scores = one_positive_first_the_other_last(data)
    good = {t: (1.0 if y else 0.0) for t, y in zip(data.X.texts, data.y, strict=True)}
    SpyRanker.log = []
    chosen, validation = select(
        {"noisy": lambda: SpyRanker(scores), "good": lambda: SpyRanker(good)},
        data,
        CUT,
        validation_weeks=2,
    )
    assert chosen == "good"
    assert validation["good"]["criterion"] > validation["noisy"]["criterion"]
    validation_start = CUT - timedelta(weeks=2)
    for trained, _ in SpyRanker.log:
        for t in trained - {"old-seed"}:
            assert data.published[data.ids.index(t)] < validation_start
    result = evaluate_cut(
        {"noisy": lambda: SpyRanker(scores), "good": lambda: SpyRanker(good)},
        data,
        CUT,
        horizon=2,
        validation_weeks=2,
        replay=False,
    )
    assert result["chosen"] == "good"


def test_real_baselines_rank_separable_tiny_data_perfectly_at_every_cut():
    data = make_data(weeks_before=3, weeks_after=4)
    data.X = PaperSet(
        [
            f"efficient VLA token pruning paper {i}" if label else f"galaxy survey number {i}"
            for i, label in enumerate(data.y)
        ],
        data.X.vectors,
    )
    cuts = (CUT, CUT + timedelta(weeks=1))
    result = rolling_eval({"kw": KeywordBaseline, "svm": TfidfSvmBaseline}, data, cuts, horizon=2)
    assert result["cuts"] == [c.isoformat() for c in cuts]
    for name in ("kw", "svm"):
        summary = result["rankers"][name]["summary"]
        assert summary["static.full.recall@10"]["per_cut"] == [1.0, 1.0]
        assert summary["replay.full.recall@10"]["mean"] == pytest.approx(1.0)
        assert summary["static.full.ap"]["std"] == pytest.approx(0.0)


def test_evla_eval_reports_every_ranker_at_each_cut_on_the_bundled_training_data(tmp_path, capsys):
    """The real command on the shipped seeds and training stream (vectors from the shipped
    cache), one short cut: every ranker, both truths, the paired differences, and the
    evla ranker well ahead of a keyword filter on average precision."""
    from click.testing import CliRunner

    from evla_miner.cli import cli
    from evla_miner.commands.classify import print_eval

    db = str(tmp_path / "evla.db")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init"]).exit_code == 0
    out = runner.invoke(
        cli,
        ["--db", db, "eval", "--no-replay", "--cut", "2025-06-30", "--horizon", "4", "--json"],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.output[out.output.index("{") :])
    rel = result["relevance"]
    assert rel["cuts"] == ["2025-06-30"] and rel["horizon_weeks"] == 4
    assert set(rel["rankers"]) == {"evla", "keyword", "tfidf+svm"}
    evla = rel["rankers"]["evla"]["cuts"][0]
    assert evla["test_weeks"] == 4 and evla["test_papers"] > 500
    assert "replay" not in evla
    assert evla["static"]["related"]["positives"] < evla["static"]["full"]["positives"]
    assert rel["evla_minus"]["keyword"]["static.full.ap"]["mean"] > 0.05
    assert 0.7 < result["taxonomy"]["pillar_top1_accuracy"] <= 1.0
    print_eval(result)  # the tables render from the JSON alone
    printed = capsys.readouterr().out
    assert "evla minus tfidf+svm, cut by cut" in printed
    assert printed.strip().splitlines()[-1].startswith("rolling evaluation, 1 cuts x 4 weeks")


def test_choose_settings_adds_evla_as_a_grid_of_its_own_settings():
    """``evla eval --choose-settings``: evla's weight_svm, C_tfidf and k as 12 candidate
    settings, which the rolling protocol chooses among on each cut's validation weeks."""
    from evla_miner.scoring.evaluate import EVLA_CHOSEN, SETTINGS_GRID, default_rankers

    assert EVLA_CHOSEN not in default_rankers()
    grid = default_rankers({"n_folds": 3}, choose_settings=True)[EVLA_CHOSEN]
    assert len(grid) == 12
    built = [factory().get_params() for factory in grid.values()]
    assert {tuple(p[k] for k in SETTINGS_GRID) for p in built} == set(
        itertools.product(*SETTINGS_GRID.values())
    )
    assert all(p["n_folds"] == 3 for p in built)
    name, factory = next(iter(grid.items()))
    assert name == "weight_svm=0.25, C_tfidf=1.0, k_neighbours=3"
    assert factory().weight_svm == 0.25
