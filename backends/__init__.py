"""One module per runtime; each imports its runtime only when a job needs it."""
