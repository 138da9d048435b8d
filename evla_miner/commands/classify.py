"""``evla classify``, ``evla predict``, ``evla train`` and ``evla eval``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..core.progress import RichReporter
from .common import ISO_DAY, as_date, echo_jsonl, pass_app, stdout_console


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
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, allow_dash=True))
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "table"]), default="jsonl", show_default=True
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
    {"id": null, "error": ...} in its place.

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


def print_eval(result: dict) -> None:
    from rich.table import Table

    console = stdout_console()
    tax = result["taxonomy"]
    t = Table(title=f"Taxonomy, {tax['folds']}-fold CV over {tax['papers']} labelled survey papers")
    for column in ("metric", "value", "target"):
        t.add_column(column)
    t.add_row("pillar top-1 accuracy", f"{tax['pillar_top1_accuracy']:.3f}", ">= 0.90")
    t.add_row("leaf recall@3", f"{tax['leaf_recall@3']:.3f}", ">= 0.80")
    t.add_row("macro-F1 (leaf labels)", f"{tax['macro_f1']:.3f}", "")
    console.print(t)
    rep = result["replay"]
    r = Table(
        title=(
            f"Weekly triage replay: cut {rep['cut']}, {rep['weeks']} weeks "
            f"({rep['weeks_with_positives']} with positives), "
            f"{rep['future_papers']:,} papers / {rep['future_positives']} relevant after the cut; "
            f"known before: {rep['known_papers']:,} / {rep['known_positives']}"
        )
    )
    for column in (
        "ranker",
        "recall@10 week-mean",
        "recall@10 overall",
        "missed@10",
        "recall@20 week-mean",
        "recall@20 overall",
        "AP (static)",
        "WSS@95",
    ):
        r.add_column(column, justify="right" if column != "ranker" else "left")
    for name, m in rep["rankers"].items():
        r.add_row(
            name,
            f"{m['recall@10_week_mean']:.3f}",
            f"{m['recall@10_overall']:.3f}",
            str(m["missed@10"]),
            f"{m['recall@20_week_mean']:.3f}",
            f"{m['recall@20_overall']:.3f}",
            f"{m['ap']:.3f}",
            f"{m['wss95']:.3f}",
        )
    console.print(r)
    click.echo("targets: recall@10/week >= 0.95, AP >= 0.60, ahead of both baselines")
    for name, m in rep["rankers"].items():
        if "calibration" in m:
            bands = "; ".join(
                f"{b['from']:.1f}-{b['to']:.1f}: {b['papers']:,} papers, {b['relevant']:.1%} "
                f"relevant (mean p {b['mean_probability']:.2f})"
                for b in reversed(m["calibration"]["bands"])
                if b["papers"]
            )
            click.echo(
                f"{name} probabilities on the post-cut stream: Brier "
                f"{m['calibration']['brier']:.4f}; {bands}"
            )


@click.command(name="eval")
@click.option(
    "--cut",
    type=ISO_DAY,
    help="Replay cut date (YYYY-MM-DD): what was published before it is known. Default 2025-03-31.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@pass_app
def eval_(app, cut, as_json):
    """Measure the classifier: taxonomy CV on the seeds and the weekly triage replay
    on the training stream, beside a keyword filter and TF-IDF + linear SVM.

    \b
    Example:
      evla eval
    """
    from ..scoring.classify import training_set
    from ..scoring.embed import VectorStore, embedder_from_settings
    from ..scoring.evaluate import DEFAULT_CUT, run_eval

    settings, reporter = app.settings, RichReporter()
    embedder = embedder_from_settings(settings.classify)
    training = training_set(
        app.db(), embedder, settings.seeds, VectorStore.load(settings.models), reporter=reporter
    )
    result = run_eval(training, cut=as_date(cut) or DEFAULT_CUT, reporter=reporter)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_eval(result)


COMMANDS = [classify, predict, train, eval_]
