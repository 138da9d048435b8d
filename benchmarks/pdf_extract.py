"""Pages per second of the PDF pipeline against raw PyMuPDF, measured in one run.

    python benchmarks/pdf_extract.py [DIR_OR_FILES ...] [--rounds 5]

Default input: the real PDFs in ../shared/fixtures/pdfs (and tricky/). Both
sides read the same bytes from memory in this process, one core:

* raw:      ``pymupdf.open`` + ``page.get_text()`` for every page;
* pipeline: ``extract_document`` (blocks, reading order, furniture, sections,
            reference region) + ``parse_references`` (split, parse every entry).

Raw and pipeline alternate file by file so machine load hits both alike; the
ratio printed is pipeline pages/s over raw pages/s, median over rounds
(target >= 0.9x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pymupdf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evla_miner.ingest.pdf_text import extract_document  # noqa: E402
from evla_miner.ingest.references import parse_references  # noqa: E402

DEFAULT_DIR = REPO.parent / "shared" / "fixtures" / "pdfs"


def raw(blob: bytes) -> int:
    with pymupdf.open(stream=blob, filetype="pdf") as doc:
        for page in doc:
            page.get_text()
        return doc.page_count


def pipeline(blob: bytes) -> int:
    document = extract_document(blob)
    parse_references(document.reference_lines)
    return document.pages


def timed(func, blob: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    pages = func(blob)
    return pages, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, help=f"PDF files or directories (default {DEFAULT_DIR})"
    )
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    paths = args.paths or [DEFAULT_DIR]
    files = []
    for path in paths:
        files.extend(sorted(path.rglob("*.pdf")) if path.is_dir() else [path])
    if not files:
        sys.exit(f"no PDFs found in {', '.join(map(str, paths))}")
    data = [f.read_bytes() for f in files]
    for blob in data:  # warm up: fonts, imports, regex compilation
        raw(blob), pipeline(blob)

    # The two sides alternate file by file (and swap who goes first every round),
    # so a load spike on this shared machine hits both alike.
    ratios, raw_rates, pipe_rates = [], [], []
    for round_number in range(args.rounds):
        raw_time = pipe_time = 0.0
        pages = 0
        for blob in data:
            order = (raw, pipeline) if round_number % 2 == 0 else (pipeline, raw)
            for func in order:
                count, seconds = timed(func, blob)
                if func is raw:
                    raw_time += seconds
                    pages += count
                else:
                    pipe_time += seconds
        raw_rates.append(pages / raw_time)
        pipe_rates.append(pages / pipe_time)
        ratios.append(raw_time / pipe_time)
    print(f"{len(files)} PDFs, {pages} pages, {args.rounds} rounds (PyMuPDF {pymupdf.VersionBind})")
    print(f"raw page.get_text(): {statistics.median(raw_rates):7.1f} pages/s (median)")
    print(f"evla pipeline:       {statistics.median(pipe_rates):7.1f} pages/s (median)")
    print(
        f"ratio pipeline/raw:  {statistics.median(ratios):.2f}x (rounds: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.9x)"
    )


if __name__ == "__main__":
    main()
