"""Where things are and what the user configured.

Precedence everywhere: command-line flag > environment variable > config file
(``evla.toml`` in the working directory, or the file named by ``$EVLA_CONFIG``)
> built-in default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from .errors import BadInput

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
DEMO_SNAPSHOT = PACKAGE_DATA / "demo-stream.jsonl.gz"
DEMO_DB_PATH = Path("db") / "demo.db"


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


def seeds_dir() -> Path:
    """The seeds: ``$EVLA_SEEDS``, else the checkout's ``seeds/``, else ``./seeds``."""
    if os.environ.get("EVLA_SEEDS"):
        return Path(os.environ["EVLA_SEEDS"])
    return _first_existing(PROJECT_ROOT / "seeds", Path("seeds"))


def models_dir() -> Path:
    """Trained classifier artefacts: ``$EVLA_MODELS``, else the checkout's ``models/``."""
    if os.environ.get("EVLA_MODELS"):
        return Path(os.environ["EVLA_MODELS"])
    return _first_existing(PROJECT_ROOT / "models", Path("models"))


def config_path() -> Path:
    return Path(os.environ.get("EVLA_CONFIG") or "evla.toml")


def load_config(path: Path | None = None) -> dict:
    """The user's TOML config as a dict (empty when there is none)."""
    path = path or config_path()
    if not path.exists():
        if os.environ.get("EVLA_CONFIG"):
            raise BadInput(f"config file not found: {path}")
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: invalid TOML: {exc}") from exc
