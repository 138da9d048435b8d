"""PDF text: reading order, sections, the reference region, and every kind of bad input.

Generated PDFs (tests/pdf_factory.py) run everywhere; the real arXiv PDFs in
../shared/fixtures/pdfs are read in place by the ``shared`` tests at the end.
"""

from __future__ import annotations

import pytest
from pdf_factory import (
    HTML_ERROR_PAGE,
    encrypted_pdf,
    image_only_pdf,
    many_pages_pdf,
    paper_pdf,
    two_column_pdf,
)

from evla_miner.ingest.pdf_text import PdfError, classify_heading, extract_document, extract_text

REFS = [
    "[1] A. Author and B. Author. Token pruning for robots. arXiv:2406.04339, 2024.",
    "[2] C. Writer. Fast policies. In CoRL, 2023.",
    "[3] D. Person, E. Person, and F. Person. Small models act well. In ICRA, 2022.",
]


# --- bad input: one line each, never a crash --------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (HTML_ERROR_PAGE, "not a PDF: an HTML/XML page"),
        (b"", "not a PDF: empty file"),
        (b"PK\x03\x04 a zip file", "not a PDF: no %PDF header"),
        (b"%PDF-1.7\n1 0 obj garbage garbage\n%%EOF\n", "corrupt PDF"),
    ],
)
def test_non_pdf_and_corrupt_input_is_a_one_line_error(data, message):
    with pytest.raises(PdfError) as info:
        extract_document(data)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_encrypted_pdf_is_refused():
    with pytest.raises(PdfError, match="^encrypted PDF"):
        extract_document(encrypted_pdf())


def test_truncated_pdf_is_refused_not_silently_repaired():
    data = paper_pdf(references=REFS)
    for cut in (len(data) // 2, len(data) - 40, 300):
        with pytest.raises(PdfError, match="truncated PDF"):
            extract_document(data[:cut])


def test_image_only_pdf_has_no_text_layer():
    with pytest.raises(PdfError, match="no text layer"):
        extract_document(image_only_pdf())


def test_page_limit_and_time_limit():
    data = many_pages_pdf(12)
    with pytest.raises(PdfError, match=r"too many pages: 12 > limit 10"):
        extract_document(data, max_pages=10)
    assert extract_document(data, max_pages=12).pages == 12
    with pytest.raises(PdfError, match="time limit of 1e-09 s exceeded at page 1 of 12"):
        extract_document(data, time_limit=1e-9)


def test_missing_file_is_a_pdf_error(tmp_path):
    with pytest.raises(PdfError, match="cannot read"):
        extract_document(tmp_path / "nope.pdf")


def test_reads_from_path_and_bytes_alike(tmp_path):
    data = paper_pdf(references=REFS)
    path = tmp_path / "paper.pdf"
    path.write_bytes(data)
    assert extract_text(path) == extract_text(data)


# --- reading order and sections ---------------------------------------------------------


def test_two_column_page_is_read_left_column_first():
    left = [f"left line {i} of the first column text" for i in range(12)]
    right = [f"right line {i} of the second column text" for i in range(12)]
    text = extract_text(two_column_pdf(left, right))
    lines = text.splitlines()
    assert lines[0] == "A Two Column Paper About Robots"
    assert lines[1:] == left + right


def test_sections_are_split_at_headings_and_references_end_at_the_appendix():
    doc = extract_document(paper_pdf(references=REFS))
    names = [s["name"] for s in doc.sections]
    assert names == [
        "front",
        "abstract",
        "introduction",
        "method",
        "experiments",
        "conclusion",
        "references",
        "appendix",
    ]
    assert doc.section_text("method").startswith("2 Method\nBody text of section 2")
    refs = doc.section_text("references")
    assert refs.startswith("References\n[1] A. Author") and refs.rstrip().endswith("In ICRA, 2022.")
    assert "Lemma 1" not in refs and "Lemma 1" in doc.section_text("appendix")
    assert doc.reference_source == "heading"
    assert [line.text for line in doc.reference_lines] == REFS
    for section in doc.sections:  # offsets tile the text
        assert 0 <= section["start"] <= section["end"] <= len(doc.text)
    assert doc.sections[-1]["end"] == len(doc.text)


def test_reference_list_without_a_heading_is_found_by_its_numbering():
    refs = [f"{n}. A. Author{n}, Some Journal {n}, 10{n} (2019)." for n in range(1, 8)]
    doc = extract_document(paper_pdf(references=refs, heading=None, appendix=None))
    assert doc.reference_source == "numbered-list"
    assert [line.text for line in doc.reference_lines] == refs
    assert doc.sections[-1]["name"] == "references"


def test_no_reference_list_at_all():
    doc = extract_document(paper_pdf(references=[], heading=None, appendix=None))
    assert doc.reference_lines == [] and doc.reference_source == "none"


@pytest.mark.parametrize(
    "line, expected",
    [
        ("References", ("canonical", "references", None)),
        ("REFERENCES", ("canonical", "references", None)),
        ("Bibliography", ("canonical", "references", None)),
        ("1 Introduction", ("canonical", "introduction", "1")),
        ("I. INTRODUCTION", ("canonical", "introduction", "I")),
        ("3 Token Pruning", ("numbered", "token pruning", "3")),
        ("Acknowledgements", ("canonical", "acknowledgments", None)),
        ("A Proofs of the Lemmas", ("lettered", "proofs of the lemmas", "A")),
        ("Appendix", ("canonical", "appendix", None)),
        ("Abstract—We show that", ("abstract-run-in", "abstract", None)),
        ("3 D. C. Johnston, Adv. Phys. 59, 803 (2010).", None),
        ("1 We present a method that works.", None),
        ("A. Smith, B. Jones, and C. Lee. Title.", None),
        ("2 = x + y", None),
    ],
)
def test_classify_heading(line, expected):
    assert classify_heading(line) == expected


# --- real arXiv PDFs (../shared) --------------------------------------------------------

# Section layout checked by reading each PDF (page numbers as printed in the PDF viewer).
REAL_SECTIONS = {
    # PPO: "References" on p9, "A Hyperparameters" on p10 ends them.
    "1707.06347v2.pdf": ("heading", 9, ["introduction", "conclusion", "references", "appendix"]),
    # ViT: "REFERENCES" on p9; "APPENDIX" on p13 after a floating table.
    "2010.11929v2.pdf": (
        "heading",
        9,
        ["introduction", "related_work", "method", "references", "appendix"],
    ),
    # VLN survey (ACL, two-column): "References" p9, "A ..." appendix p17.
    "2203.12667v3.pdf": ("heading", 9, ["introduction", "references", "appendix"]),
    # REVTeX, no heading: the list "1 D. C. Johnston ..." starts on p8.
    "tricky/1111.2011v2.pdf": ("numbered-list", 8, ["introduction", "discussion", "references"]),
    "tricky/2503.05372.pdf": ("numbered-list", 5, ["introduction", "references"]),
}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(REAL_SECTIONS))
def test_real_pdf_sections(shared_dir, name):
    source, ref_page, expected = REAL_SECTIONS[name]
    doc = extract_document(shared_dir / "fixtures" / "pdfs" / name)
    names = [s["name"] for s in doc.sections]
    for section in expected:
        assert section in names
    assert [names.index(s) for s in expected] == sorted(names.index(s) for s in expected)
    assert doc.reference_source == source
    assert doc.reference_lines[0].page == ref_page


@pytest.mark.shared
def test_real_two_column_reference_list_reads_in_order(shared_dir):
    # 1111.2011v2 p8: the REVTeX list sits below DISCUSSION/ACKNOWLEDGMENTS as its
    # own two-column band: left column 1-11, right column 12-20.
    doc = extract_document(shared_dir / "fixtures" / "pdfs" / "tricky" / "1111.2011v2.pdf")
    text = doc.references_text
    assert text.startswith("1 D. C. Johnston, Adv. Phys. 59, 803 (2010).")
    assert text.index("11 S. Sachdev") < text.index("Press (2011).") < text.index("12 R. Burioni")
    assert "ACKNOWLEDGMENTS" not in text
    assert text.rstrip().endswith(
        "20 A. Del Maestro, J. M. Murray and Z. Teˇsanovi´c, unpub-\nlished."
    )


@pytest.mark.shared
def test_real_running_heads_are_dropped(shared_dir):
    doc = extract_document(shared_dir / "fixtures" / "pdfs" / "2010.11929v2.pdf")
    assert "Published as a conference paper at ICLR 2021" not in doc.text
    assert "ﬁ" not in doc.text  # ligatures expanded
