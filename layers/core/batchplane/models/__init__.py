"""Pydantic models: jobs and attempts, requests, events and the policy document. No I/O here."""
