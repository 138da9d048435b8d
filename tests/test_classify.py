"""The classifier on small data with the model-free HashingEmbedder: training data
assembly, decisions, scoring into ``scores``, retraining, ``evla predict``."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import dumps, open_db
from evla_miner.core.jsonl import read_jsonl
from evla_miner.core.settings import seeds_dir
from evla_miner.ingest.seeds import init_db
from evla_miner.scoring import classify as clf
from evla_miner.scoring import model as model_module
from evla_miner.scoring.embed import HashingEmbedder
from evla_miner.scoring.model import META_FILE, MODEL_FILE, load_model, training_hash
from evla_miner.scoring.ship import build_shipped_models
from evla_miner.scoring.training import Example, decisions_in_force, training_examples

TOPICS = {
    "model.compression.token_optimization": (
        "visual token pruning and token merging reduce tokens for fast VLA inference"
    ),
    "model.compression.quantization": "low-bit quantization int4 weights ternary VLA policy memory",
    "model.arch.transformer_alternatives": (
        "mamba state space model replaces transformer in VLA policy linear time"
    ),
    "training.posttraining.rl": (
        "reinforcement learning fine-tuning of VLA policy reward online rollouts"
    ),
    "data.collection.simulation": (
        "simulation data generation for VLA training synthetic demonstrations"
    ),
}
OFF_TOPIC = [
    "galaxy rotation curves dark matter halo survey",
    "graph neural networks for molecule property prediction",
    "protein folding language models benchmark",
    "legal document summarisation with transformers",
    "traffic forecasting spatio temporal graphs",
    "speech recognition for low resource languages",
]


def record(paper_id, title, abstract, day="2025-03-04"):
    from datetime import date

    created = date.fromisoformat(day).strftime("%a, %d %b %Y 00:00:00 GMT")
    return {
        "id": paper_id,
        "title": title,
        "abstract": abstract,
        "authors": "A. Author",
        "categories": "cs.RO",
        "versions": [{"version": "v1", "created": created}],
    }


@pytest.fixture
def small_seeds(tmp_path, monkeypatch):
    """A seeds dir with the real taxonomy, 10 labelled survey papers and a 40-record stream."""
    root = tmp_path / "seeds"
    (root / "training").mkdir(parents=True)
    shutil.copy(seeds_dir() / "taxonomy.toml", root / "taxonomy.toml")
    seeds, stream, positives = [], [], []
    n = 0
    for label, words in TOPICS.items():
        for variant in range(2):
            n += 1
            seeds.append(
                {
                    **record(
                        f"2401.{n:05d}",
                        f"Efficient VLA {words.split()[0]} {variant}",
                        f"{words} variant {variant}",
                        "2024-01-10",
                    ),
                    "labels": [label],
                    "label_source": "test",
                }
            )
    seeds.append(
        {
            "id": None,
            "title": "A seed without id or abstract",
            "abstract": None,
            "labels": ["foundation"],
            "versions": [],
        }
    )
    for week in range(4):
        for i, words in enumerate(TOPICS.values()):
            if (week + i) % 3 == 0:
                pid = f"2503.{week:02d}{i:03d}"
                stream.append(
                    record(
                        pid,
                        f"VLA {words.split()[1]} study",
                        f"{words} new results week {week}",
                        f"2025-03-{3 + 7 * week:02d}",
                    )
                )
                positives.append(
                    {
                        "id": pid,
                        "in_survey_list": True,
                        "in_related_list": False,
                        "first_listed": "2025-09-01",
                    }
                )
        for j, words in enumerate(OFF_TOPIC):
            stream.append(
                record(
                    f"2503.{week:02d}{100 + j:03d}",
                    f"On {words.split()[0]}",
                    f"{words} week {week}",
                    f"2025-03-{3 + 7 * week:02d}",
                )
            )
    (root / "seed_papers.jsonl").write_text("".join(json.dumps(s) + "\n" for s in seeds))
    with gzip.open(root / "training" / "stream.jsonl.gz", "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in stream)
    (root / "training" / "stream.positives.jsonl").write_text(
        "".join(json.dumps(p) + "\n" for p in positives)
    )
    monkeypatch.setenv("EVLA_SEEDS", str(root))
    monkeypatch.setenv("EVLA_MODELS", str(tmp_path / "models"))
    config = tmp_path / "evla.toml"
    config.write_text('[classify]\nembedding_model = "hashing-bow-256"\n')
    monkeypatch.setenv("EVLA_CONFIG", str(config))
    return root


def test_training_examples_merge_seeds_and_stream(small_seeds):
    examples = training_examples(small_seeds)
    by_id = {e.id: e for e in examples}
    assert sum(e.in_stream for e in examples) == 4 * (len(OFF_TOPIC)) + sum(
        1 for w in range(4) for i in range(5) if (w + i) % 3 == 0
    )
    assert by_id["2503.00000"].positive and by_id["2503.00100"].positive is False
    noid = [e for e in examples if e.id.startswith("noid:")]
    assert (
        len(noid) == 1
        and noid[0].text == "A seed without id or abstract"
        and noid[0].labels == ["foundation"]
    )
    assert by_id["2401.00001"].labels == ["model.compression.token_optimization"]


def test_effective_decisions_latest_non_undone_wins(db):
    rows = [
        ("a", "accept", ["model"], "2025-01-01T00:00:00"),
        ("a", "reject", None, "2025-01-02T00:00:00"),
        ("a", "undo", None, "2025-01-03T00:00:00"),  # back to accept
        ("b", "accept", None, "2025-01-01T00:00:00"),
        ("b", "undo", None, "2025-01-02T00:00:00"),  # nothing left
        ("c", "reject", None, "2025-01-01T00:00:00"),
    ]
    db["decisions"].insert_all(
        [
            {"paper_id": p, "decision": d, "categories": dumps(c) if c else None, "decided_at": t}
            for p, d, c, t in rows
        ]
    )
    decided = decisions_in_force(db)
    assert {k: v["decision"] for k, v in decided.items()} == {"a": "accept", "c": "reject"}
    assert json.loads(decided["a"]["categories"]) == ["model"]


def _train_small(small_seeds, db=None):
    model, _ = clf.train(db, HashingEmbedder(256), seeds=small_seeds)
    return model


def test_model_ranks_on_topic_papers_higher_with_consistent_categories(small_seeds):
    model = _train_small(small_seeds)
    texts = [
        "Token merging and visual token pruning for fast VLA inference on robots",
        "Dark matter halo survey of galaxy rotation curves",
    ]
    preds = model.predict(texts, HashingEmbedder(256).encode(texts))
    assert preds[0]["relevance"] > preds[1]["relevance"]
    assert 0.0 <= preds[1]["relevance"] <= 1.0
    scores = {c["id"]: c["score"] for c in preds[0]["categories"]}
    assert [c["score"] for c in preds[0]["categories"]] == sorted(
        (c["score"] for c in preds[0]["categories"]), reverse=True
    )
    assert preds[0]["categories"][0]["id"] in {
        "model",
        "model.compression",
        "model.compression.token_optimization",
    }
    parent = {n["id"]: n["parent"] for n in model.nodes}
    for node, score in scores.items():  # a leaf implies its parents
        if parent.get(node):
            assert scores[parent[node]] >= score
    nearest = preds[0]["explanation"]["nearest"]
    assert len(nearest) == 3
    assert nearest[0]["id"] in {"2401.00001", "2401.00002"}  # the two token-optimization seeds
    assert nearest[0]["similarity"] >= nearest[1]["similarity"]
    assert any(
        "token" in term or "pruning" in term or "vla" in term
        for term in preds[0]["explanation"]["terms"]
    )


def test_training_is_deterministic(small_seeds):
    a, b = _train_small(small_seeds), _train_small(small_seeds)
    assert a.model_id == b.model_id
    texts = ["quantization of VLA weights to int4"]
    vec = HashingEmbedder(256).encode(texts)
    assert a.predict(texts, vec) == b.predict(texts, vec)


def test_score_papers_writes_scores_and_retrains_on_decisions(small_seeds, tmp_path):
    db = open_db(tmp_path / "db" / "evla.db")
    init_db(db, small_seeds)
    build_shipped_models(None, HashingEmbedder(256), evaluate=False)
    from evla_miner.ingest.snapshot import import_snapshot

    import_snapshot(db, small_seeds / "training" / "stream.jsonl.gz")
    counts = clf.score_papers(db, embedder=HashingEmbedder(256))
    assert counts["retrained"] is False
    assert counts["scored"] == db["papers"].count
    assert counts["embeddings_from_shipped_store"] > 0  # the shipped vectors pre-seeded the cache
    row = db["scores"].get("2503.00000")
    assert row["model"] == counts["model"]
    categories = json.loads(row["categories"])
    assert categories and {"id", "score"} <= set(categories[0])
    explanation = json.loads(row["explanation"])
    assert set(explanation) == {"nearest", "terms"}
    assert clf.score_papers(db, embedder=HashingEmbedder(256))["scored"] == 0  # nothing new

    db["decisions"].insert(
        {
            "paper_id": "2503.00100",
            "decision": "accept",
            "categories": dumps(["data.augmentation"]),
            "decided_at": "2025-04-01T00:00:00",
        }
    )
    again = clf.score_papers(db, embedder=HashingEmbedder(256))
    assert again["retrained"] is True and again["model"] != counts["model"]
    assert again["scored"] == db["papers"].count  # all rescored with the new model
    assert (tmp_path / "db" / "models" / MODEL_FILE).exists()
    assert clf.score_papers(db, embedder=HashingEmbedder(256))["retrained"] is False


def test_predict_cli_contract(small_seeds, tmp_path):
    build_shipped_models(None, HashingEmbedder(256), evaluate=False)
    records = [
        record(
            "2510.00001", "Visual token pruning for VLA", "token merging for fast VLA inference"
        ),
        {"title": "No id, no abstract, no categories"},
        record("hep-th/9901001v2", "Strings", None),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")
    result = CliRunner().invoke(cli, ["predict", str(path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["2510.00001", None, "hep-th/9901001", None]
    assert "error" in lines[3]
    for line in lines[:3]:
        assert 0 <= line["relevance"] <= 1
        assert line["categories"][0]["score"] >= line["categories"][-1]["score"]
        assert {"nearest", "terms"} <= set(line["explanation"])
    assert lines[0]["relevance"] > lines[2]["relevance"]
    assert not (tmp_path / "evla.db").exists()  # predict writes nothing to the db


def test_predict_without_model_is_a_clear_error(small_seeds, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(record("2510.00001", "t", "a")) + "\n")
    result = CliRunner().invoke(cli, ["predict", str(path)])
    assert result.exit_code == 1
    assert "evla train" in result.output


def test_a_survey_paper_is_not_its_own_nearest_neighbour(small_seeds):
    model = _train_small(small_seeds)
    seed_text = next(
        e for e in training_examples(small_seeds) if e.labels and e.id.startswith("2401.")
    )
    vec = HashingEmbedder(256).encode([seed_text.text])
    with_id = model.predict([seed_text.text], vec, ids=[seed_text.id])[0]["explanation"]["nearest"]
    without = model.predict([seed_text.text], vec)[0]["explanation"]["nearest"]
    assert without[0]["id"] == seed_text.id and without[0]["similarity"] == pytest.approx(
        1.0, abs=1e-3
    )
    assert seed_text.id not in [n["id"] for n in with_id] and len(with_id) == 3


@pytest.mark.slow
def test_shipped_artefacts_cover_the_demo_and_match_their_metadata():
    """models/ as committed: the model loads, its id matches training.json, every file is
    < 8 MB, and the shipped vectors cover every demo record (no embedding on first run)."""
    from evla_miner.core.settings import DEMO_SNAPSHOT, models_dir
    from evla_miner.scoring.embed import DEFAULT_MODEL_ID, VectorStore, content_hash, paper_text

    directory = models_dir()
    model = load_model(directory)
    meta = json.loads((directory / META_FILE).read_text())
    assert model.model_id == meta["model_id"] and model.embedder_id == DEFAULT_MODEL_ID
    assert all(path.stat().st_size < 8_000_000 for path in directory.iterdir())
    store = VectorStore.load(directory)
    records = read_jsonl(DEMO_SNAPSHOT)
    missing = [
        r["id"]
        for r in records
        if store.get(content_hash(paper_text(r.get("title"), r.get("abstract")))) is None
    ]
    assert missing == []
    texts = [paper_text(r.get("title"), r.get("abstract")) for r in records[:50]]
    vectors = np.stack([store.get(content_hash(t)) for t in texts])
    predictions = model.predict(texts, vectors)
    assert all(0 <= p["relevance"] <= 1 and p["categories"] for p in predictions)


def test_model_version_is_part_of_the_model_id(monkeypatch):
    """A change to what the estimators predict bumps MODEL_VERSION, which gives a new
    model id, so databases holding scores of the old model rescore."""
    examples = [Example(id="2401.00001", text="token pruning for VLA", positive=True)]
    before = training_hash(examples, "embedder", {})
    monkeypatch.setattr(model_module, "MODEL_VERSION", model_module.MODEL_VERSION + 1)
    assert training_hash(examples, "embedder", {}) != before


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, remembering every text it was asked to embed."""

    def __init__(self, dim: int = 256):
        super().__init__(dim)
        self.seen: list[str] = []

    def encode(self, texts, batch_size=None):
        self.seen.extend(texts)
        return super().encode(texts, batch_size)


NEW_WEEK = [
    record("2511.00001", "Visual token pruning for VLA", "token merging for fast VLA inference"),
    record("2511.00002", "Int4 VLA", "low-bit quantization int4 weights ternary VLA policy"),
    *(
        record(f"2511.{100 + j:05d}", f"On {words.split()[0]}", f"{words} week 4")
        for j, words in enumerate(OFF_TOPIC)
    ),
]


def test_the_gate_screens_off_topic_papers_out_without_reading_their_vectors(small_seeds):
    """Papers whose words already rule them out are scored without an embedding: their
    rows of ``vectors`` are never read (NaN here), they still get a relevance, categories
    and terms, and the on-topic papers score exactly as with every vector present."""
    model = _train_small(small_seeds)
    texts = [clf.paper_text(r["title"], r["abstract"]) for r in NEW_WEEK]
    vectors = HashingEmbedder(256).encode(texts)
    passed = model.needs_vectors(texts)
    assert passed[:2].all() and not passed.all()

    blinded = vectors.copy()
    blinded[~passed] = np.nan
    full, gated = model.predict(texts, vectors), model.predict(texts, blinded)
    assert [p["relevance"] for p in gated] == [p["relevance"] for p in full]
    for p, was_embedded in zip(gated, passed, strict=True):
        assert 0 <= p["relevance"] <= 1 and p["categories"]
        assert bool(p["explanation"]["nearest"]) == was_embedded
    screened = [p["relevance"] for p, ok in zip(gated, passed, strict=True) if not ok]
    assert max(screened) < min(p["relevance"] for p in gated[:2])


def test_gate_share_one_sends_every_paper_to_the_full_model(small_seeds):
    training = clf.training_set(None, HashingEmbedder(256), small_seeds)
    from evla_miner.scoring.model import fit_model

    model = fit_model(training, "hashing-bow-256", relevance_params={"gate_share": 1.0})
    texts = [clf.paper_text(r["title"], r["abstract"]) for r in NEW_WEEK]
    assert model.needs_vectors(texts).all()


def test_score_papers_embeds_only_papers_past_the_gate(small_seeds, tmp_path):
    from evla_miner.ingest.snapshot import import_snapshot

    db = open_db(tmp_path / "db" / "evla.db")
    init_db(db, small_seeds)
    build_shipped_models(None, HashingEmbedder(256), evaluate=False)
    week = tmp_path / "week.jsonl"
    week.write_text("".join(json.dumps(r) + "\n" for r in NEW_WEEK))
    import_snapshot(db, week)
    embedder = CountingEmbedder(256)
    counts = clf.score_papers(db, embedder=embedder)
    new_texts = {clf.paper_text(r["title"], r["abstract"]) for r in NEW_WEEK}
    embedded_new = new_texts & set(embedder.seen)
    assert counts["scored"] == db["papers"].count
    assert 2 <= len(embedded_new) < len(new_texts)  # the on-topic ones, not all
    assert counts["past_gate"] < counts["scored"]
    model = load_model(tmp_path / "models")
    for r in NEW_WEEK:  # what is stored equals predicting with every vector present
        text = clf.paper_text(r["title"], r["abstract"])
        expected = model.predict([text], HashingEmbedder(256).encode([text]), ids=[r["id"]])[0]
        assert db["scores"].get(r["id"])["relevance"] == expected["relevance"]
