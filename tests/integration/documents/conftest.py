"""Fixtures of these tests live in tests/fixtures/documents.py (shared with the benches)."""
