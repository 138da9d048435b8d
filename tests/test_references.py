"""Reference parsing and matching: identifiers in every form, the citation styles,
lists without a heading, matching to papers, and the real PDFs' reference lists."""

from __future__ import annotations

import pytest
from pdf_factory import paper_pdf

from evla_miner.core.records import upsert_papers
from evla_miner.ingest.pdf_text import Line, extract_document
from evla_miner.ingest.references import (
    PaperIndex,
    find_arxiv_ids,
    find_dois,
    match_references,
    parse_entry,
    parse_references,
    references_from_pdf,
    split_entries,
)

# --- identifiers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("arXiv preprint arXiv:2406.04339v2, 2024.", ["2406.04339"]),
        ("arXiv:2406.04339", ["2406.04339"]),
        ("ArXiv 1706.03762.", ["1706.03762"]),
        ("https://arxiv.org/abs/2406.04339v1", ["2406.04339"]),
        ("http://arxiv.org/pdf/2406.04339v3.pdf", ["2406.04339"]),
        ("arxiv.org/abs/hep-th/9901001", ["hep-th/9901001"]),
        ("arXiv:hep-th/9901001v2 [hep-th]", ["hep-th/9901001"]),
        ("Nucl. Phys. B 123, hep-ph/0305012.", ["hep-ph/0305012"]),
        ("arXiv:math.GT/0309136", ["math.GT/0309136"]),
        ("CoRR, abs/1502.05477 (2015).", ["1502.05477"]),
        ("doi:10.48550/arXiv.2406.04339", ["2406.04339"]),
        ("arXiv:2107. 07201.", ["2107.07201"]),  # broken at the line end, joined with a space
        ("arXiv:0704.0001 and arXiv:1412.6980", ["0704.0001", "1412.6980"]),
        ("arXiv:1613.00001", []),  # month 13
        ("arXiv:2406.0433", []),  # 2015+ ids have 5 digits
        ("pages 1097-1105, 2012. 1234.5678", []),
        ("Phys. Rev. D68, 037502 (2003)", []),
    ],
)
def test_find_arxiv_ids(text, expected):
    assert find_arxiv_ids(text) == expected


def test_find_dois_strips_trailing_punctuation_and_lowercases():
    assert find_dois("doi:10.1109/CVPR.2015.7299170. URL http://x") == ["10.1109/cvpr.2015.7299170"]
    assert find_dois("(https://doi.org/10.1137/0330046).") == ["10.1137/0330046"]
    assert find_dois("J. Imaging, 22(4), 2013. doi:10.1117/1.JEI.22.4.041119.") == [
        "10.1117/1.jei.22.4.041119"
    ]


# --- one entry, the common styles -----------------------------------------------------


@pytest.mark.parametrize(
    "raw, title, year, authors",
    [
        # IEEE / NeurIPS numbered
        (
            "[4] R. Berri and A. G. Silva. A Pattern Recognition System for Detecting Use of "
            "Mobile Phones While Driving. (August), 2014.",
            "A Pattern Recognition System for Detecting Use of Mobile Phones While Driving",
            2014,
            ["R. Berri", "A. G. Silva"],
        ),
        # quoted title (biblatex alphabetic labels)
        (
            "[Bro+16] G. Brockman, V. Cheung, and W. Zaremba. “OpenAI Gym”. In: arXiv preprint "
            "arXiv:1606.01540 (2016).",
            "OpenAI Gym",
            2016,
            ["G. Brockman", "V. Cheung", "W. Zaremba"],
        ),
        # natbib ICML: Surname, F. M.
        (
            "Almeida, T. A., Hidalgo, J. M. G., and Yamakami, A. Contributions to the Study of SMS "
            "Spam Filtering: New Collection and Results. In Proceedings of DocEng. ACM, 2011.",
            "Contributions to the Study of SMS Spam Filtering: New Collection and Results",
            2011,
            ["T. A. Almeida", "J. M. G. Hidalgo", "A. Yamakami"],
        ),
        # APA: year in parentheses after the authors
        (
            "Bellemare, M. G., Dabney, W., and Munos, R. (2017). A distributional perspective on "
            "reinforcement learning. arXiv preprint arXiv:1707.06887.",
            "A distributional perspective on reinforcement learning",
            2017,
            ["M. G. Bellemare", "W. Dabney", "R. Munos"],
        ),
        # ACL: year after the authors, no parentheses
        (
            "Dong An, Yuankai Qi, and Tieniu Tan. 2021. Neighbor-view enhanced model for vision "
            "and language navigation. arXiv preprint arXiv:2107.07201.",
            "Neighbor-view enhanced model for vision and language navigation",
            2021,
            ["Dong An", "Yuankai Qi", "Tieniu Tan"],
        ),
        # ICLR: full names, year at the end
        (
            "Diederik P. Kingma and Jimmy Ba. Adam: A method for stochastic optimization. In ICLR, "
            "2015.",
            "Adam: A method for stochastic optimization",
            2015,
            ["Diederik P. Kingma", "Jimmy Ba"],
        ),
        # organisation as author
        (
            "[OpenAI, 2023] OpenAI. Gpt-4 technical report. arXiv preprint arXiv:2303.08774, 2023.",
            "Gpt-4 technical report",
            2023,
            ["OpenAI"],
        ),
        # physics: no title at all
        ("1 D. C. Johnston, Adv. Phys. 59, 803 (2010).", None, 2010, ["D. C. Johnston"]),
    ],
)
def test_parse_entry_styles(raw, title, year, authors):
    ref = parse_entry(raw)
    assert ref["raw"] == raw
    assert ref["title"] == title
    assert ref["year"] == year
    assert ref["authors"] == authors


def test_parse_entry_ids():
    ref = parse_entry(
        "[9] S. Li. Face Detection. 2015. doi:10.1007/s11263-015-0816-y. URL http://arxiv.org/abs/1409.0575"
    )
    assert (ref["arxiv_id"], ref["doi"]) == ("1409.0575", "10.1007/s11263-015-0816-y")
    # the arXiv DOI names the arXiv id, not a separate DOI
    ref = parse_entry("A. Author. A title here. 2024. https://doi.org/10.48550/arXiv.2406.04339")
    assert (ref["arxiv_id"], ref["doi"]) == ("2406.04339", None)


# --- splitting lists --------------------------------------------------------------


def test_split_numbered_plain_text_joins_wrapped_lines():
    text = """[1] A. Author. A long title that wraps onto
the next line. In NeurIPS, 2020.
[2] B. Author. Rein-
forcement learning again. arXiv preprint arXiv:2107.
07201, 2021.
[3] C. Author. Third. 2019."""
    entries = split_entries(text)
    assert entries == [
        "[1] A. Author. A long title that wraps onto the next line. In NeurIPS, 2020.",
        "[2] B. Author. Reinforcement learning again. arXiv preprint arXiv:2107.07201, 2021.",
        "[3] C. Author. Third. 2019.",
    ]


def test_split_bare_numbers_follow_the_sequence():
    # "80 144415 (2009)" opens a line but is not entry 80: the sequence says 17 comes next.
    text = """15 A. V. Chubukov, S. Sachdev and J. Ye, Phys. Rev. B 49,
1 A. Georges, Rev. Mod. Phys. 68, 13 (1996).
2 C. R. Laumann and S. L. Sondhi, Phys. Rev. B
80 144415 (2009).
3 K. Byczuk and D. Vollhardt, Phys. Rev. B 77, 235106
(2008)."""
    entries = split_entries(text)
    assert [e.split()[0] for e in entries] == ["1", "2", "3"]
    assert entries[1] == "2 C. R. Laumann and S. L. Sondhi, Phys. Rev. B 80 144415 (2009)."


def test_split_hanging_indent_author_year():
    # Entries open at the column edge; continuation blocks are indented by 10 pt.
    lines = [
        Line(1, "Andrychowicz, M., Wolski, F., and Zaremba, W. (2017). Hindsight", 0.0, True),
        Line(1, "experience replay. In NeurIPS.", 10.0, True),
        Line(1, "Bellemare, M. G. and Munos, R. (2017). A distributional", 0.0, True),
        Line(1, "perspective on reinforcement learning.", 10.0, True),
        Line(1, "arXiv preprint arXiv:1707.06887.", 10.0, False),
        Line(1, "Caruana, R. (1997). Multitask learning. Machine Learning.", 0.0, True),
    ]
    refs = parse_references(lines)
    assert [r["position"] for r in refs] == [1, 2, 3]
    assert refs[1]["title"] == "A distributional perspective on reinforcement learning"
    assert refs[1]["arxiv_id"] == "1707.06887"
    assert refs[2]["title"] == "Multitask learning"


def test_split_author_year_plain_text_without_layout():
    text = """Caruana, R. Multitask learning. Machine Learning,
1997.
Dai, A. M. and Le, Q. V. Semi-supervised sequence learning.
In NIPS. 2015.
Howard, J. and Ruder, S. Universal language model fine-tuning. In ACL, 2018."""
    refs = parse_references(text)
    assert [r["title"] for r in refs] == [
        "Multitask learning",
        "Semi-supervised sequence learning",
        "Universal language model fine-tuning",
    ]


def test_generated_pdf_without_heading_gives_entries():
    refs = [
        f"{n}. A. Author{n}, Nucl. Phys. B {n}0, 1{n} (2019), arXiv:hep-th/990100{n}."
        for n in range(1, 7)
    ]
    entries = references_from_pdf(paper_pdf(references=refs, heading=None, appendix=None))
    assert [e["arxiv_id"] for e in entries] == [f"hep-th/990100{n}" for n in range(1, 7)]


def test_generated_pdf_references_stop_at_the_appendix():
    refs = [
        "[1] A. Author. First paper title. arXiv:2406.04339, 2024.",
        "[2] B. Author. Second paper title. In CoRL, 2023.",
    ]
    entries = references_from_pdf(paper_pdf(references=refs))
    assert len(entries) == 2
    assert entries[1]["raw"] == "[2] B. Author. Second paper title. In CoRL, 2023."


# --- matching ---------------------------------------------------------------------


def _paper(paper_id, title, doi=None):
    return {
        "id": paper_id,
        "version": 1,
        "versions": [{"version": 1, "created": "2024-06-01"}],
        "title": title,
        "doi": doi,
        "published": "2024-06-01",
        "source": "test",
    }


def test_match_by_arxiv_id_then_doi_then_title(db):
    upsert_papers(
        db,
        [
            _paper("2406.09246", "OpenVLA: An Open-Source Vision-Language-Action Model"),
            _paper("1707.06347", "Proximal Policy Optimization Algorithms", doi="10.5555/ppo.2017"),
            _paper(
                "2303.16563",
                "Plan4MC: Skill Reinforcement Learning and Planning for Open-World Minecraft Tasks",
            ),
        ],
    )
    refs = [
        {"arxiv_id": "2406.09246", "doi": None, "title": "something else entirely"},
        {"arxiv_id": None, "doi": "10.5555/PPO.2017", "title": None},
        {
            "arxiv_id": None,
            "doi": None,
            "title": (
                "Plan4MC: Skill reinforcement learning and planning for open-world minecraft tasks"
            ),
        },
        {
            "arxiv_id": None,
            "doi": None,
            "title": (
                "Plan4MC: Skil reinforcement learning & planning for open world Minecraft task"
            ),
        },
        {
            "arxiv_id": "9999.99999",
            "doi": None,
            "title": "Proximal policy optimization",
        },  # too short to trust
        {"arxiv_id": None, "doi": None, "title": "Planning for open-world tasks"},
    ]
    match_references(db, refs)
    assert [(r["matched_id"], r["match_method"]) for r in refs] == [
        ("2406.09246", "arxiv_id"),
        ("1707.06347", "doi"),
        ("2303.16563", "title"),
        ("2303.16563", "title"),
        (None, None),
        (None, None),
    ]


def test_index_on_empty_db_matches_nothing(db):
    index = PaperIndex.build(db)
    assert index.match(
        {"arxiv_id": "2406.09246", "doi": None, "title": "Anything at all here"}
    ) == (None, None)


# --- real PDFs (../shared) ------------------------------------------------------------

# Per PDF: entries found, how many carry an arXiv id or DOI, and hand-verified entries.
# Counts were verified against the PDF text: numbered lists by their last number;
# label and author-year lists by counting the entries' first lines (the blocks at the
# column edge in PyMuPDF's block dump, minus headings/tables), and for ACL-style
# lists by counting ". YEAR. " openings (2203.12667: 129 plus entries 75 and 76
# whose authors end in "Daumé."/"III.").
REAL = {
    # p9: [Bel+15] ... [Wil92], 14 labels. [Sch+15b] reads 'J. Schulman, S. Levine,
    # P. Moritz, M. I. Jordan, and P. Abbeel. “Trust region policy optimization”. In:
    # CoRR, abs/1502.05477 (2015).'
    "1707.06347v2.pdf": (
        14,
        8,
        {
            10: ("1502.05477", None, 2015, "Trust region policy optimization"),
            2: ("1606.01540", None, 2016, "OpenAI Gym"),
        },
    ),
    # p13-14, 25 entries Barto ... Wright. Entry 7 'Heess, Nicolas, ... Learning continuous
    # control policies by stochastic value gradients. arXiv preprint arXiv:1510.09142, 2015.'
    "1506.02438v6.pdf": (
        25,
        3,
        {
            7: (
                "1510.09142",
                None,
                2015,
                "Learning continuous control policies by stochastic value gradients",
            ),
            25: (None, None, 1999, "Numerical optimization"),
        },
    ),
    # p8-9, [1]..[35]. [4] ends 'doi:10.5220/0004684504110418.'
    "1706.09498v1.pdf": (
        35,
        12,
        {
            4: (
                None,
                "10.5220/0004684504110418",
                2014,
                "A Pattern Recognition System for Detecting Use of Mobile Phones While Driving",
            )
        },
    ),
    # p7-8, 21 entries Andrychowicz ... Todorov; 'Brockman, G., ... (2016). Openai gym.
    # arXiv preprint arXiv:1606.01540.'
    "1802.09464v2.pdf": (21, 13, {3: ("1606.01540", None, 2016, "Openai gym")}),
    # p9-10, 56 entries Almeida ... Zoph.
    "1902.00751v2.pdf": (
        56,
        7,
        {
            1: (
                None,
                None,
                2011,
                "Contributions to the Study of SMS Spam Filtering: New Collection and Results",
            ),
            56: (None, None, 2017, "Neural architecture search with reinforcement learning"),
        },
    ),
    # p9-12, 58 entries Abnar ... Zhao (the floating "Table 3" on p13 is not one).
    "2010.11929v2.pdf": (
        58,
        5,
        {
            24: (None, None, 2015, "Adam: A method for stochastic optimization"),
            58: (None, None, 2020, "Exploring self-attention for image recognition"),
        },
    ),
    # p10-12, 49 entries Agarap ... Zhu.
    "2104.08860v2.pdf": (
        49,
        16,
        {1: ("1803.08375", None, 2018, "Deep learning using rectified linear units (relu)")},
    ),
    # p9-16, 131 entries An ... Zhu; 'Dong An, ... 2021. Neighbor-view enhanced model for
    # vision and language navigation. arXiv preprint arXiv:2107.07201.' (id wraps a line).
    "2203.12667v3.pdf": (
        131,
        18,
        {
            1: (
                "2107.07201",
                None,
                2021,
                "Neighbor-view enhanced model for vision and language navigation",
            )
        },
    ),
    # p10-12, [1]..[33].
    "2303.16563v1.pdf": (
        33,
        13,
        {
            4: (
                "2301.10034",
                None,
                2023,
                "Open-world multi-task control through goal-aware representation learning and "
                "adaptive horizon prediction",
            )
        },
    ),
    # p8-9, 64 "[Name et al., YEAR]" labels.
    "2402.02385v1.pdf": (
        64,
        29,
        {
            38: ("2303.08774", None, 2023, "Gpt-4 technical report"),
            64: (
                None,
                None,
                2023,
                "Rt-2: Vision-language-action models transfer web knowledge to robotic control",
            ),
        },
    ),
    # tricky: no heading, p8 '1 D. C. Johnston ...' .. '20 A. Del Maestro ... unpublished.'
    "tricky/1111.2011v2.pdf": (20, 0, {20: (None, None, None, None)}),
    # tricky: no heading, [1]..[53], '[1] ATLAS Collaboration, G. Aad et al., arXiv:1506.00962
    # [Inspire].'
    "tricky/1508.05632v2.pdf": (53, 53, {1: ("1506.00962", None, None, None)}),
    # tricky: Word file, "1." .. "5."; '4. Wald, R. M. “Gravitational Collapse and Cosmic
    # Censorship” (1997), https://arxiv.org/abs/gr-qc/9710068'
    "tricky/1805.05865.pdf": (
        5,
        2,
        {4: ("gr-qc/9710068", None, 1997, "Gravitational Collapse and Cosmic Censorship")},
    ),
    # tricky: no heading, refextract expects 39; '[1] R. N. Cahn and J. D. Jackson, ...
    # Phys. Rev. D68, 037502 (2003), arXiv:hep-ph/0305012 [hep-ph].'
    "tricky/2503.05372.pdf": (39, 29, {1: ("hep-ph/0305012", None, 2003, None)}),
    # tricky: NeurIPS proceedings, [1]..[29], no ids in the text.
    "tricky/NeurIPS-2021-landmark-rxr-publisher-version.pdf": (
        29,
        0,
        {29: (None, None, 2014, "Glove: Global vectors for word representation")},
    ),
}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_pdf_references(shared_dir, name):
    count, with_id, checked = REAL[name]
    refs = references_from_pdf(shared_dir / "fixtures" / "pdfs" / name)
    assert len(refs) == count
    assert sum(1 for r in refs if r["arxiv_id"] or r["doi"]) == with_id
    assert [r["position"] for r in refs] == list(range(1, count + 1))
    for position, (arxiv_id, doi, year, title) in checked.items():
        ref = refs[position - 1]
        assert (ref["arxiv_id"], ref["doi"], ref["year"], ref["title"]) == (
            arxiv_id,
            doi,
            year,
            title,
        ), ref["raw"]


@pytest.mark.shared
def test_real_references_match_a_db_of_papers(shared_dir, db):
    # PPO cites GAE (1506.02438) by arXiv id and TRPO by "abs/1502.05477".
    upsert_papers(
        db,
        [
            _paper(
                "1506.02438",
                "High-Dimensional Continuous Control Using Generalized Advantage Estimation",
            ),
            _paper("1502.05477", "Trust Region Policy Optimization"),
            _paper("1312.5602", "Human-level control through deep reinforcement learning"),
        ],
    )
    refs = match_references(
        db, references_from_pdf(shared_dir / "fixtures" / "pdfs" / "1707.06347v2.pdf")
    )
    matched = {(r["position"], r["matched_id"], r["match_method"]) for r in refs if r["matched_id"]}
    assert matched == {
        (9, "1506.02438", "arxiv_id"),
        (10, "1502.05477", "arxiv_id"),
        (7, "1312.5602", "title"),
    }


@pytest.mark.shared
def test_real_document_reference_lines_feed_the_parser(shared_dir):
    doc = extract_document(shared_dir / "fixtures" / "pdfs" / "2402.02385v1.pdf")
    # "References" shares its block with the first entry on p8: the entry survives.
    assert doc.reference_lines[0].text.startswith("[Alloghani et al., 2020]")
