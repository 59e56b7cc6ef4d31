"""The helper that hides random ids before a "secret not in text" check still shows a real leak."""

from __future__ import annotations

from tests.fixtures.secrets import without_random_ids


def test_random_ids_are_hidden_but_a_leaked_pin_stays_visible() -> None:
    text = (
        '{"id": "cfd7f0b2-e7a9-4c3e-823b-612344bcfd17", "at": "2026-12-03T10:28:59.123456+00:00"}'
    )
    assert "1234" in text and "1234" not in without_random_ids(text)
    assert "1234" in without_random_ids(
        '{"id": "cfd7f0b2-e7a9-4c3e-823b-612344bcfd17", "pin": "1234"}'
    )
