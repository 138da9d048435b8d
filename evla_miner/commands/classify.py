"""``evla classify``, ``evla predict``, ``evla train`` and ``evla eval``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..core.progress import RichReporter
from .common import ISO_DAY, echo_jsonl, pass_app, stdout_console


@click.command()
@click.option(
    "--rescore", is_flag=True, help="Score every paper again, not only the unscored ones."
)
@pass_app
def classify(app, rescore):
    """Score papers: relevance to the survey, taxonomy categories, explanation.

    Scores every paper that has no score from the current model. When
    reviewers made decisions since the model was trained, it retrains first
    (the retrained model lives beside the database, in <db dir>/models/).

    Papers are screened by their words first: only those that could be
    relevant (about a fifth of a typical week) are embedded and scored by the
    full model; the others keep the screen's (tiny) probability, categories
    from their words and no nearest survey papers.

    \b
    Example:
      evla classify
    """
    from ..scoring.classify import score_papers

    counts = score_papers(
        app.db(), reporter=RichReporter(), rescore=rescore, settings=app.settings.classify
    )
    click.echo(
        f"run {counts['run_id']}: {counts['scored']:,} papers scored with {counts['model']}"
        f"{' (retrained on reviewer decisions)' if counts['retrained'] else ''}; "
        f"{counts['relevant']:,} relevant (>= 0.5) in total"
        + (
            f"; {counts['past_gate']:,} scored in full, the rest screened out by their words"
            if counts["scored"]
            else ""
        )
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "table"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one JSON object per record (id, relevance, categories, explanation, unsure); "
    "table: id, relevance, top category, nearest survey paper and terms per record.",
)
@click.option(
    "--models",
    "models_path",
    type=click.Path(file_okay=False, exists=True),
    help="Model directory. Default: the db's retrained model if any, else models/.",
)
@pass_app
def predict(app, file, fmt, models_path):
    """Score the records of FILE (arXiv snapshot format, JSON lines, optionally .gz).

    Prints one JSON object per record, in input order:
    {"id", "relevance", "categories": [{"id", "score"}, ...] best first,
    "explanation": {"nearest": [...], "terms": [...]}, "unsure"}.
    Writes nothing to the database. A line that is not a JSON object gives
    {"id": null, "error": ...} in its place. A record its words already rule
    out is not embedded: it gets a relevance near 0, categories from its words
    and an empty "nearest" list.

    \b
    Example:
      evla predict new.jsonl --format jsonl
    """
    from ..core.jsonl import iter_jsonl
    from ..scoring.classify import predict_records
    from ..scoring.embed import VectorStore, embedder_from_settings
    from ..scoring.model import find_model, model_directories

    settings = app.settings
    directories = (
        [Path(models_path)]
        if models_path
        else model_directories(app.resolved_db_path.parent, settings.models)
    )
    model = find_model(directories)
    records, errors = [], {}
    for line in iter_jsonl(file):
        if line.error or not isinstance(line.value, dict):
            errors[len(records)] = line.error or "not a JSON object"
            records.append({})
        else:
            records.append(line.value)
    embedder = embedder_from_settings(settings.classify)
    predictions = predict_records(
        records, model, embedder, VectorStore.load(settings.models), reporter=RichReporter()
    )
    for i, error in errors.items():
        predictions[i] = {"id": None, "error": error}
    if fmt == "jsonl":
        echo_jsonl(predictions)
        return
    from rich.table import Table

    from ..core.records import clean_text

    table = Table(title=f"{len(predictions)} records, model {model.model_id}")
    for column in ("id", "relevance", "top category", "nearest survey paper", "terms"):
        table.add_column(column)
    for record, p in zip(records, predictions, strict=True):
        if "error" in p:
            table.add_row("-", "-", p["error"], "", "")
            continue
        nearest = p["explanation"]["nearest"][0] if p["explanation"]["nearest"] else {}
        table.add_row(
            p["id"] or clean_text(record.get("title")) or "-",
            f"{p['relevance']:.3f}",
            f"{p['categories'][0]['id']} {p['categories'][0]['score']:.2f}"
            if p["categories"]
            else "",
            f"{nearest.get('title', '')[:40]} ({nearest.get('similarity', 0):.2f})",
            ", ".join(p["explanation"]["terms"][:4]),
        )
    stdout_console().print(table)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Where to write the artefacts. Default: models/.",
)
@click.option(
    "--no-eval",
    is_flag=True,
    help="Skip the evaluation whose metrics are recorded beside the artefacts.",
)
@pass_app
def train(app, out_dir, no_eval):
    """Rebuild the shipped classifier from seeds/ (deterministic, fixed seeds).

    Writes classifier.joblib, training.json (training data hash, counts,
    metrics) and embeddings-*.npz (float16 vectors of every training text,
    which also pre-seed the embedding cache of new databases).

    \b
    Example:
      evla train
    """
    from ..scoring.embed import embedder_from_settings
    from ..scoring.ship import build_shipped_models

    settings = app.settings
    meta = build_shipped_models(
        app.db(),
        embedder_from_settings(settings.classify),
        Path(out_dir) if out_dir else None,
        evaluate=not no_eval,
        seeds=settings.seeds,
        reporter=RichReporter(),
    )
    click.echo(
        f"model {meta['model_id']}: {meta['examples']:,} papers ({meta['positives']} relevant, "
        f"{meta['labelled']} with categories); training data sha256 "
        f"{meta['training_data_sha256'][:16]}…"
    )
    if "metrics" in meta:
        print_eval(meta["metrics"])


TAXONOMY_TARGET = 0.85
RELEVANCE_COLUMNS = (
    ("replay R@10", "replay.full.recall@10"),
    ("static R@10", "static.full.recall@10"),
    ("static R@20", "static.full.recall@20"),
    ("AP", "static.full.ap"),
    ("AP in keyword", "static.full.ap_within_keyword"),
    ("2-wk R@10", "static.full.recall@10_2wk"),
    ("2nd: replay R@10", "replay.related.recall@10"),
    ("2nd: AP", "static.related.ap"),
)


def _spread(summary: dict, key: str) -> str:
    m = summary.get(key)
    return f"{m['mean']:.3f} ± {m['std']:.3f}" if m else "-"


def print_eval(result: dict) -> None:
    """The evaluation as tables: taxonomy CV, relevance per ranker (mean ± spread over
    cuts), evla per cut, evla minus each baseline cut by cut, then the one-line summary."""
    from rich.table import Table

    from ..scoring.evaluate import EVLA, EVLA_CHOSEN, summary_line

    console = stdout_console()
    tax = result["taxonomy"]
    t = Table(title=f"Taxonomy, {tax['folds']}-fold CV over {tax['papers']} labelled survey papers")
    for column in ("metric", "value", "target"):
        t.add_column(column)
    target = f">= {TAXONOMY_TARGET:.2f}"
    t.add_row(
        "pillar of the first category is one of the paper's",
        f"{tax['pillar_top1_accuracy']:.3f}",
        target,
    )
    t.add_row(
        "... is the pillar of its first listed label", f"{tax['pillar_strict_accuracy']:.3f}", ""
    )
    t.add_row("best-scoring pillar is one of the paper's", f"{tax['pillar_best_accuracy']:.3f}", "")
    t.add_row("leaf recall@3", f"{tax['leaf_recall@3']:.3f}", target)
    t.add_row("macro-F1 (leaf labels)", f"{tax['macro_f1']:.3f}", "")
    nested = tax.get("nested")
    if nested:
        how = f"nested CV ({nested['inner_folds']}-fold inner CV chooses the settings)"
        t.add_row(f"{how}: pillar top-1", f"{nested['pillar_top1_accuracy']:.3f}", target)
        t.add_row("... strict", f"{nested['pillar_strict_accuracy']:.3f}", "")
        t.add_row("... leaf recall@3", f"{nested['leaf_recall@3']:.3f}", target)
    console.print(t)
    if nested:
        counts: dict[str, int] = {}
        for params in nested["chosen"]:
            key = ", ".join(f"{k}={v}" for k, v in params.items())
            counts[key] = counts.get(key, 0) + 1
        click.echo(
            "taxonomy settings chosen per outer fold: "
            + "; ".join(f"{key} ({n}x)" for key, n in counts.items())
        )

    rel = result["relevance"]
    rankers = rel["rankers"]
    r = Table(
        title=(
            f"Relevance, rolling origin: {len(rel['cuts'])} cut(s) ({rel['cuts'][0]} .. "
            f"{rel['cuts'][-1]}) x {rel['horizon_weeks']} test weeks; mean ± spread over cuts"
        )
    )
    r.add_column("ranker", no_wrap=True)
    columns = [
        (c, k) for c, k in RELEVANCE_COLUMNS if any(k in x["summary"] for x in rankers.values())
    ]
    for column, _ in columns:
        r.add_column(column, justify="right")
    for name, ranker in rankers.items():
        r.add_row(name, *(_spread(ranker["summary"], k) for _, k in columns))
    console.print(r)
    for name in rankers:
        click.echo(f"  {name}: {rel['names'].get(name, name)}")
    click.echo("  2nd: positives from the second curator's list alone")

    if EVLA in rankers:
        per_cut = Table(title="evla per cut")
        for column in ("cut", "known", "test", *(c for c, _ in columns)):
            per_cut.add_column(column, justify="right", no_wrap=column == "cut")
        for c in rankers[EVLA]["cuts"]:
            cells = []
            for _, key in columns:
                part, truth, metric = key.split(".", 2)
                value = c.get(part, {}).get(truth, {}).get(metric)
                cells.append("-" if value is None else f"{value:.3f}")
            per_cut.add_row(c["cut"], f"{c['known']:,}", f"{c['test_papers']:,}", *cells)
        console.print(per_cut)
        if EVLA_CHOSEN in rankers:
            chosen = "; ".join(f"{c['cut']}: {c['chosen']}" for c in rankers[EVLA_CHOSEN]["cuts"])
            click.echo(f"{EVLA_CHOSEN}, the setting each cut's validation weeks chose: {chosen}")
        n_cuts = len(rel["cuts"])
        for other, diffs in rel.get("evla_minus", {}).items():
            diff_cells = "; ".join(
                f"{key}: {d['mean']:+.3f} ± {d['std']:.3f} ({d['wins']}/{n_cuts} cuts won)"
                for key, d in diffs.items()
            )
            click.echo(f"evla minus {other}, cut by cut: {diff_cells}")
        summary = rankers[EVLA]["summary"]
        stop = summary.get("stop_reading")
        if stop:
            click.echo(
                f"stop-reading estimate (read until 95% of the expected relevant papers): held in "
                f"{stop['held']:.1%} of test weeks, reading {stop['mean_n']:.1f} of "
                f"{stop['mean_queue']:.0f} papers a week on average"
            )
        if "brier" in summary:
            click.echo(
                f"evla probabilities on the test weeks: Brier {summary['brier']['mean']:.4f}"
            )
    click.echo(
        "targets on unseen weeks: replay recall@10/week >= 0.90, static recall@10 >= 0.85, "
        "recall@20 >= 0.97, AP >= 0.50"
    )
    click.echo(summary_line(result))


@click.command(name="eval")
@click.option(
    "--cut",
    "cuts",
    type=ISO_DAY,
    multiple=True,
    help=(
        "A cut date (YYYY-MM-DD), repeatable: what was announced before it trains, the "
        "weeks after it test. Default: the first week of each month, April to September 2025."
    ),
)
@click.option(
    "--horizon",
    type=click.IntRange(1, 52),
    default=8,
    show_default=True,
    help="Test weeks after each cut.",
)
@click.option(
    "--no-replay",
    is_flag=True,
    help="Static rankings only: skip the weekly replay with reviewer feedback (much faster).",
)
@click.option(
    "--choose-settings",
    is_flag=True,
    help=(
        "Also evaluate evla with its main settings chosen inside the training data: relevance "
        "(SVM weight, TF-IDF C, k) at each cut on the validation weeks before it, taxonomy "
        "(description weight, C) by nested CV. Adds ~10 minutes with the replay."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print every number as JSON.")
@pass_app
def eval_(app, cuts, horizon, no_replay, choose_settings, as_json):
    """Measure the classifier the way it is used, on data it was not tuned on.

    Taxonomy: 10-fold cross-validation over the survey's labelled papers.
    Relevance: a rolling-origin replay of the weekly triage at several cut dates,
    each trained on what was known before its cut and tested on the weeks after,
    for evla beside a keyword filter and TF-IDF + linear SVM; positives from
    both curators' lists and from the second curator's list alone. Report the
    spread across cuts with any difference: a gain smaller than it is noise.
    The full run takes about ten minutes on two cores.

    \b
    Examples:
      evla eval
      evla eval --no-replay --cut 2025-06-02 --cut 2025-07-28
      evla eval --choose-settings
      evla eval --json > eval.json
    """
    from ..scoring.classify import training_set
    from ..scoring.embed import VectorStore, embedder_from_settings
    from ..scoring.evaluate import DEFAULT_CUTS, run_eval

    settings, reporter = app.settings, RichReporter()
    embedder = embedder_from_settings(settings.classify)
    training = training_set(
        app.db(), embedder, settings.seeds, VectorStore.load(settings.models), reporter=reporter
    )
    result = run_eval(
        training,
        cuts=sorted(c.date() for c in cuts) if cuts else DEFAULT_CUTS,
        horizon=horizon,
        replay=not no_replay,
        reporter=reporter,
        choose_settings=choose_settings,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_eval(result)


COMMANDS = [classify, predict, train, eval_]
