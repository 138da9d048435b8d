"""What reviewers see and do: the proposal queue, terminal triage, the weekly digest and
the BibTeX / Markdown exports of what they accepted."""
