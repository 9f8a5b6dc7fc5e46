"""batchplane's tooling: the local stack, the Batch emulator, the `batchplane` CLI and the event fixtures.

Never shipped to Lambda: the layer holds the runtime package `batchplane` alone, and nothing in it
imports this package (tests/unit/test_layering.py).
"""
