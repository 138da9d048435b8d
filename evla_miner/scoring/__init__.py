"""How papers are scored: sentence embeddings, the relevance and taxonomy classifier
(training, scoring, evaluation, shipped artefacts) and the citation graph's influence."""
