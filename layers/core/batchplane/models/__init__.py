"""Pydantic models: jobs and attempts, requests, events and the policy document. No I/O here.

Every model derives from `base.Model`, which builds its validator at first use. These modules
(and api/schemas.py, settings.py) leave out `from __future__ import annotations`: with it, pydantic
evaluates each field's annotation from a string as it builds the class, which cost each function's
cold start up to 7 ms (bench/cold_start.py).
"""
