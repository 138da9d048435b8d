"""How papers get in: the survey's seeds, arXiv snapshot files and the live arXiv API,
then the PDFs of candidate papers with their text and reference lists."""
