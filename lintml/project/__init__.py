"""What the project knows before any check runs: layout -> index -> summaries. The layout
says which files make up the project and which module an import names; the index and
the summaries built on it say what those modules define, so a check of one file can
follow a name into another."""
