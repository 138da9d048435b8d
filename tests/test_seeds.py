"""Seeds: the bundled taxonomy and survey papers load idempotently and are validated."""

import pytest

from evla_miner.core.errors import BadInput
from evla_miner.core.settings import seeds_dir
from evla_miner.ingest.seeds import init_db, load_taxonomy


def test_bundled_taxonomy_has_the_surveys_shape():
    nodes = {node["id"]: node for node in load_taxonomy(seeds_dir() / "taxonomy.toml")}
    levels = [node["level"] for node in nodes.values()]
    assert levels.count("pillar") == 3
    assert levels.count("category") == 6
    assert levels.count("subcategory") == 18
    assert levels.count("auxiliary") == 2
    leaves = [n for n in nodes.values() if n["is_leaf"] and n["level"] != "auxiliary"]
    assert len(leaves) == 19  # data.augmentation has no children
    assert nodes["data.augmentation"]["is_leaf"] == 1
    assert nodes["model.compression.token_optimization"]["parent"] == "model.compression"


def test_init_loads_the_survey_and_is_idempotent(db):
    first = init_db(db, seeds_dir())
    assert first["seed_papers"] == 106 and db["survey"].count == 106
    snapshot = (db["papers"].count, list(db["survey"].rows), list(db["taxonomy"].rows))
    second = init_db(db, seeds_dir())
    assert second["papers_inserted"] == 0 and second["survey_rows_changed"] == 0
    assert snapshot == (db["papers"].count, list(db["survey"].rows), list(db["taxonomy"].rows))


def test_seed_without_arxiv_id_gets_a_stable_synthetic_key(seeded_db):
    assert (
        seeded_db["papers"]
        .get("noid:minivla-a-better-vla-with-a-smaller-footprint")["title"]
        .startswith("MiniVLA")
    )


def test_taxonomy_with_unknown_parent_is_rejected(tmp_path):
    path = tmp_path / "taxonomy.toml"
    path.write_text('[[node]]\nid = "a"\nname = "A"\nparent = "missing"\n')
    with pytest.raises(BadInput, match="unknown parent"):
        load_taxonomy(path)


def test_seed_labels_must_exist_in_the_taxonomy(tmp_path, db):
    (tmp_path / "taxonomy.toml").write_text('[[node]]\nid = "a"\nname = "A"\n')
    (tmp_path / "seed_papers.jsonl").write_text(
        '{"id": "2406.04339", "title": "T", "labels": ["b"]}\n'
    )
    with pytest.raises(BadInput, match=r"seed_papers.jsonl:1: unknown taxonomy ids \['b'\]"):
        init_db(db, tmp_path)
