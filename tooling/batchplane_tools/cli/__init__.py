"""The `batchplane` command line: a thin client of the REST API, for people."""
