"""Use cases: submit, dispatch, cancel, retry, read. Each takes its ports; none builds a client."""
