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

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data"
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


# --- live arXiv harvest ([harvest] in evla.toml) --------------------------------

# Default queries: every cs.RO paper, plus papers in the big neighbouring ML
# categories whose title/abstract uses VLA or robot-policy vocabulary (most
# efficient-VLA papers are cs.CV/cs.LG/cs.AI primaries cross-listed or not to cs.RO).
VLA_TERMS = (
    'abs:"vision-language-action" OR ti:"vision-language-action" OR ti:VLA OR abs:VLA OR abs:VLAs'
    ' OR abs:"robot policy" OR abs:"robot policies" OR abs:"visuomotor policy" OR abs:"diffusion policy"'
    ' OR abs:"robotic manipulation" OR abs:"robot manipulation" OR abs:"embodied agent" OR abs:"embodied AI"'
)
DEFAULT_HARVEST_QUERIES = {
    "robotics": "cat:cs.RO",
    "vla-ml": f"(cat:cs.CV OR cat:cs.AI OR cat:cs.LG OR cat:cs.CL) AND ({VLA_TERMS})",
}
HARVEST_DEFAULTS = {
    "delay_seconds": 3.0,  # arXiv ToU: no more than one request every three seconds
    "page_size": 1000,  # arXiv allows up to 2000; smaller pages fail less often under load
    "retries": 5,
    "backoff_seconds": 5.0,  # first retry wait; doubles each time
    "max_backoff_seconds": 300.0,
    "timeout_seconds": 60.0,
    "max_results_per_query": 30_000,  # arXiv user manual §3.1.1.2: beyond this a window is split
    "overlap_days": 2,  # late index updates: re-read the last 2 days of the previous window
    "initial_days": 7,  # first run with no watermark and no --since
}
HARVEST_ENV = {
    "delay_seconds": "EVLA_ARXIV_DELAY",
    "page_size": "EVLA_ARXIV_PAGE_SIZE",
    "retries": "EVLA_ARXIV_RETRIES",
    "backoff_seconds": "EVLA_ARXIV_BACKOFF",
    "timeout_seconds": "EVLA_ARXIV_TIMEOUT",
}
QUERIES_ENV = "EVLA_ARXIV_QUERIES"


def harvest_settings(overrides: dict | None = None) -> dict:
    """The live-harvest settings: flag (``overrides``) > env > ``[harvest]`` in evla.toml > default.

    ``delay_seconds`` is whatever the user set (tests set it near zero); the
    client never goes faster than it.
    """
    file_values = load_config().get("harvest", {})
    settings = {}
    for key, default in HARVEST_DEFAULTS.items():
        value = file_values.get(key, default)
        env_name = HARVEST_ENV.get(key)
        if env_name and os.environ.get(env_name):
            value = os.environ[env_name]
        if overrides and overrides.get(key) is not None:
            value = overrides[key]
        try:
            settings[key] = type(default)(value)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"harvest setting {key}: expected a number, got {value!r}") from exc
        if settings[key] < 0:
            raise BadInput(f"harvest setting {key} must not be negative, got {value!r}")
    return settings


def _parse_query_spec(spec: str, position: int) -> tuple[str, str]:
    """``'NAME=QUERY'`` or a bare ``'QUERY'`` (named ``q<position>``)."""
    spec = spec.strip()
    name, sep, query = spec.partition("=")
    if sep and name.strip() and " " not in name.strip() and ":" not in name:
        return name.strip(), query.strip()
    return f"q{position}", spec


def harvest_queries(flag_queries: list[str] | tuple[str, ...] | None = None) -> dict[str, str]:
    """Named arXiv search queries for the live harvest, ``{name: query}``.

    * ``--query`` flags (``NAME=QUERY`` or ``QUERY``) replace everything else;
    * else ``$EVLA_ARXIV_QUERIES`` (queries separated by ``;``) replaces everything else;
    * else the defaults, plus or overridden by ``[harvest.queries]`` in evla.toml
      (same name replaces, an empty string removes; ``replace_default_queries =
      true`` drops the defaults).
    """
    if flag_queries:
        specs = list(flag_queries)
    elif os.environ.get(QUERIES_ENV):
        specs = [part for part in os.environ[QUERIES_ENV].split(";") if part.strip()]
    else:
        specs = None
    if specs is not None:
        queries = dict(_parse_query_spec(spec, i) for i, spec in enumerate(specs, start=1))
    else:
        section = load_config().get("harvest", {})
        user = section.get("queries", {})
        if not isinstance(user, dict) or not all(isinstance(v, str) for v in user.values()):
            raise BadInput('[harvest.queries] must map names to query strings, e.g. robotics = "cat:cs.RO"')
        queries = {} if section.get("replace_default_queries") else dict(DEFAULT_HARVEST_QUERIES)
        queries.update(user)
    queries = {name: " ".join(query.split()) for name, query in queries.items() if query and query.strip()}
    if not queries:
        raise BadInput("no arXiv queries configured (see [harvest.queries] in evla.toml)")
    return queries
