"""Where things are and what the user configured: every setting of the tool, resolved once.

Precedence everywhere: command-line flag > environment variable > config file
(``evla.toml`` in the working directory, or the file named by ``$EVLA_CONFIG``)
> built-in default.

``Settings.load()`` reads the file once and resolves every section (``[harvest]``,
``[pdf]``, ``[citations]``, ``[classify]``, ``[notify]``); a command applies its own flags with
``with_flags`` and hands the sections down, so a stage never reads the file or the
environment itself and the weekly job runs with exactly what ``evla pdf`` or
``evla harvest`` would use. Every key of a section can be set from the environment as
``EVLA_<SECTION>_<KEY>`` (``EVLA_PDF_WORKERS=1``); the arXiv settings also keep their
shorter names (``EVLA_ARXIV_DELAY`` ...).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadInput

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data"
DEMO_SNAPSHOT = PACKAGE_DATA / "demo-stream.jsonl.gz"
DEMO_DB_PATH = Path("db") / "demo.db"
CONFIG_ENV = "EVLA_CONFIG"


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


SEED_PAPERS_FILE = "seed_papers.jsonl"  # the survey's labelled papers, in the seeds directory


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
    return Path(os.environ.get(CONFIG_ENV) or "evla.toml")


def load_config(path: Path | None = None) -> dict:
    """The user's TOML config as a dict (empty when there is none)."""
    path = path or config_path()
    if not path.exists():
        if os.environ.get(CONFIG_ENV):
            raise BadInput(f"config file not found: {path}")
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: invalid TOML: {exc}") from exc


# --- the sections -------------------------------------------------------------------------

# Default queries: every cs.RO paper, plus papers in the big neighbouring ML
# categories whose title/abstract uses VLA or robot-policy vocabulary (most
# efficient-VLA papers are cs.CV/cs.LG/cs.AI primaries cross-listed or not to cs.RO).
VLA_TERMS = (
    'abs:"vision-language-action" OR ti:"vision-language-action" OR ti:VLA OR abs:VLA OR abs:VLAs'
    ' OR abs:"robot policy" OR abs:"robot policies" OR abs:"visuomotor policy"'
    ' OR abs:"diffusion policy"'
    ' OR abs:"robotic manipulation" OR abs:"robot manipulation" OR abs:"embodied agent"'
    ' OR abs:"embodied AI"'
)
DEFAULT_HARVEST_QUERIES = {
    "robotics": "cat:cs.RO",
    "vla-ml": f"(cat:cs.CV OR cat:cs.AI OR cat:cs.LG OR cat:cs.CL) AND ({VLA_TERMS})",
}
QUERIES_ENV = "EVLA_ARXIV_QUERIES"


@dataclass(frozen=True)
class HarvestSettings:
    """``[harvest]``: the live arXiv harvest (client pacing and retries, windows, queries)."""

    delay_seconds: float = 3.0  # arXiv ToU: no more than one request every three seconds
    page_size: int = 1000  # arXiv allows up to 2000; smaller pages fail less often under load
    retries: int = 5
    backoff_seconds: float = 5.0  # first retry wait; doubles each time
    max_backoff_seconds: float = 300.0
    timeout_seconds: float = 60.0  # one deadline per request: connect + the whole body
    max_results_per_query: int = 30_000  # arXiv user manual §3.1.1.2: beyond this a window is split
    overlap_days: int = 2  # late index updates: re-read the last 2 days of the previous window
    initial_days: int = 7  # first run with no watermark and no --since
    queries: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_HARVEST_QUERIES))

    ENV: typing.ClassVar[dict] = {
        "delay_seconds": "EVLA_ARXIV_DELAY",
        "page_size": "EVLA_ARXIV_PAGE_SIZE",
        "retries": "EVLA_ARXIV_RETRIES",
        "backoff_seconds": "EVLA_ARXIV_BACKOFF",
        "timeout_seconds": "EVLA_ARXIV_TIMEOUT",
    }


@dataclass(frozen=True)
class PdfSettings:
    """``[pdf]``: downloading and reading candidate papers' PDFs."""

    base_url: str = "https://arxiv.org/pdf/"
    interval: float = 3.0  # seconds between downloads (arXiv's rule)
    max_mb: float = 50.0  # size cap per PDF
    timeout_seconds: float = 60.0  # one deadline per download
    workers: int | None = None  # extraction processes; None = number of cores, 0 = in process
    max_pages: int = 300  # refuse longer PDFs
    time_limit: float = 60.0  # seconds of extraction per PDF
    min_relevance: float | None = None  # `evla pdf` reads every paper unless set; weekly: 0.5

    ENV: typing.ClassVar[dict] = {}


@dataclass(frozen=True)
class CitationSettings:
    """``[citations]``: which citation service the graph asks, and where it lives."""

    service: str = "s2"  # s2 (Semantic Scholar) | openalex
    s2_base_url: str | None = None
    openalex_base_url: str | None = None
    timeout_seconds: float = 60.0

    ENV: typing.ClassVar[dict] = {}


@dataclass(frozen=True)
class ClassifySettings:
    """``[classify]``: the embedding model (a local sentence-transformers directory,
    ``onnx-int8``/``onnx-fp32``, or ``hashing-bow-N`` for model-free dry runs)."""

    embedding_model: str | None = None  # None = the packaged all-MiniLM-L6-v2
    embedding_model_id: str | None = None

    ENV: typing.ClassVar[dict] = {}


@dataclass(frozen=True)
class NotifySettings:
    """``[notify]``: optional delivery of the weekly digest by e-mail (SMTP) and to a
    Slack-compatible webhook. Nothing is sent unless ``email_to`` or a webhook URL is set.

    Secrets never come from the file (it gets committed and shared): the SMTP password
    is ``$EVLA_NOTIFY_SMTP_PASSWORD`` and the webhook URL, which carries its own token,
    is ``$EVLA_NOTIFY_WEBHOOK_URL``.
    """

    email_to: str | None = None  # comma-separated recipients
    email_from: str | None = None  # default: the SMTP user, else evla-miner@<host>
    smtp_host: str | None = None
    smtp_port: int = 587  # submission port, STARTTLS
    smtp_starttls: bool = True  # false only for a relay on this machine (port 25)
    smtp_user: str | None = None
    smtp_ca_file: str | None = None  # extra CA bundle, e.g. a company relay's own CA
    timeout_seconds: float = 30.0
    subject_prefix: str = "[evla-miner]"
    smtp_password: str | None = field(default=None, repr=False)  # env only
    webhook_url: str | None = field(default=None, repr=False)  # env only

    ENV: typing.ClassVar[dict] = {}
    SECRETS: typing.ClassVar[frozenset] = frozenset({"smtp_password", "webhook_url"})


SECTIONS = {
    "harvest": HarvestSettings,
    "pdf": PdfSettings,
    "citations": CitationSettings,
    "classify": ClassifySettings,
    "notify": NotifySettings,
}

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def _convert(section: str, key: str, value: Any, kind: Any) -> Any:
    """A file or environment value as the field's type; a bad one is a one-line error."""
    if value is None:
        return None
    optional = typing.get_origin(kind) in (typing.Union, types.UnionType)
    base = (
        next((t for t in typing.get_args(kind) if t is not type(None)), kind) if optional else kind
    )
    if base in (int, float):
        try:
            number = (
                base(float(value))
                if base is int and isinstance(value, str) and "." in value
                else base(value)
            )
        except (TypeError, ValueError):
            raise BadInput(f"[{section}] {key}: expected a number, got {value!r}") from None
        if number < 0:
            raise BadInput(f"[{section}] {key} must not be negative, got {value!r}")
        return number
    if base is bool:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise BadInput(f"[{section}] {key}: expected true or false, got {value!r}")
    if base is str:
        if not isinstance(value, str):
            raise BadInput(f"[{section}] {key}: expected text, got {value!r}")
        return value
    return value


def _resolve_section(
    name: str, cls: type[Any], file_values: Mapping, environ: Mapping[str, str]
) -> Any:
    if not isinstance(file_values, Mapping):
        raise BadInput(f"[{name}] in the config file must be a table")
    hints = typing.get_type_hints(cls)
    secrets: frozenset[str] = getattr(cls, "SECRETS", frozenset())
    values = {}
    for f in dataclasses.fields(cls):
        if f.name == "queries":
            continue
        env_key = f"EVLA_{name.upper()}_{f.name.upper()}"
        if f.name in secrets and f.name in file_values:
            raise BadInput(
                f"[{name}] {f.name} is a secret and is read from the environment only: "
                f"remove it from the file and set ${env_key}"
            )
        value = file_values.get(f.name, dataclasses.MISSING)
        for env_name in (cls.ENV.get(f.name), env_key):
            if env_name and environ.get(env_name):
                value = environ[env_name]
                break
        if value is not dataclasses.MISSING:
            values[f.name] = _convert(name, f.name, value, hints[f.name])
    return cls(**values)


def parse_query_spec(spec: str, position: int) -> tuple[str, str]:
    """``'NAME=QUERY'`` or a bare ``'QUERY'`` (named ``q<position>``)."""
    spec = spec.strip()
    name, sep, query = spec.partition("=")
    if sep and name.strip() and " " not in name.strip() and ":" not in name:
        return name.strip(), query.strip()
    return f"q{position}", spec


def queries_from_specs(specs: list[str] | tuple[str, ...]) -> dict[str, str]:
    return dict(parse_query_spec(spec, i) for i, spec in enumerate(specs, start=1))


def _resolve_queries(section: Mapping, environ: Mapping[str, str]) -> dict[str, str]:
    """``$EVLA_ARXIV_QUERIES`` (``;``-separated) replaces everything else; else the
    defaults, plus or overridden by ``[harvest.queries]`` (same name replaces, an empty
    string removes; ``replace_default_queries = true`` drops the defaults)."""
    if environ.get(QUERIES_ENV):
        queries = queries_from_specs(
            [part for part in environ[QUERIES_ENV].split(";") if part.strip()]
        )
    else:
        user = section.get("queries", {})
        if not isinstance(user, dict) or not all(isinstance(v, str) for v in user.values()):
            raise BadInput(
                '[harvest.queries] must map names to query strings, e.g. robotics = "cat:cs.RO"'
            )
        queries = {} if section.get("replace_default_queries") else dict(DEFAULT_HARVEST_QUERIES)
        queries.update(user)
    return clean_queries(queries)


def clean_queries(queries: Mapping[str, str]) -> dict[str, str]:
    cleaned = {
        name: " ".join(query.split()) for name, query in queries.items() if query and query.strip()
    }
    if not cleaned:
        raise BadInput("no arXiv queries configured (see [harvest.queries] in evla.toml)")
    return cleaned


@dataclass(frozen=True)
class Settings:
    """Every section, resolved; ``source`` is the config file that was read, if any."""

    harvest: HarvestSettings = field(default_factory=HarvestSettings)
    pdf: PdfSettings = field(default_factory=PdfSettings)
    citations: CitationSettings = field(default_factory=CitationSettings)
    classify: ClassifySettings = field(default_factory=ClassifySettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    seeds: Path = field(default_factory=seeds_dir)
    models: Path = field(default_factory=models_dir)
    source: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the config file once (``path``, else ``$EVLA_CONFIG``, else ./evla.toml) and
        resolve every section against the environment."""
        environ = os.environ if environ is None else environ
        path = path or config_path()
        config = load_config(path)
        unknown = sorted(set(config) - set(SECTIONS))
        if unknown:
            raise BadInput(
                f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}"
            )
        sections = {
            name: _resolve_section(name, cls_, config.get(name, {}), environ)
            for name, cls_ in SECTIONS.items()
        }
        sections["harvest"] = dataclasses.replace(
            sections["harvest"], queries=_resolve_queries(config.get("harvest", {}), environ)
        )
        return cls(**sections, source=path if path.exists() else None)

    def with_flags(self, section: str, **flags: Any) -> Settings:
        """These settings with a command's flags applied to one section (None = not given)."""
        given = {key: value for key, value in flags.items() if value is not None}
        if not given:
            return self
        current = getattr(self, section)
        hints = typing.get_type_hints(type(current))
        converted = {
            key: value if key == "queries" else _convert(section, key, value, hints[key])
            for key, value in given.items()
        }
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **converted)})
