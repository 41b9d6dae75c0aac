"""The end-to-end harness, by concern; ``tests/harness.py`` re-exports it (import from ``harness``)."""
