"""French per-field messages of request validation errors (what the counter shows by a field)."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import BaseModel, Field, ValidationError, model_validator

from lgo.core.validation_fr import french_message


class _Model(BaseModel):
    name: str = Field(min_length=2, max_length=5)
    count: int = Field(ge=1, le=10)
    at: datetime | None = None

    @model_validator(mode="after")
    def _check(self) -> _Model:
        if self.name == "xx":
            raise ValueError("nom refusé par la règle")
        return self


def _messages(data: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        _Model.model_validate(data)
    return {
        ".".join(str(p) for p in e["loc"]) or "-": french_message(e) for e in caught.value.errors()
    }


def test_common_errors_are_french_with_their_limits() -> None:
    assert _messages({"name": "a", "count": 0}) == {
        "name": "trop court : au moins 2 caractère(s)",
        "count": "doit être supérieur ou égal à 1",
    }
    assert _messages({"name": "abcdef", "count": "x"}) == {
        "name": "trop long : au plus 5 caractère(s)",
        "count": "nombre entier attendu",
    }
    assert _messages({"count": 11, "at": "hier"}) == {
        "name": "champ obligatoire",
        "count": "doit être inférieur ou égal à 10",
        "at": "date et heure attendues (ISO 8601 avec fuseau)",
    }


def test_a_validator_message_is_kept_without_the_english_prefix() -> None:
    assert _messages({"name": "xx", "count": 1}) == {"-": "nom refusé par la règle"}


def test_unknown_types_keep_pydantic_message() -> None:
    assert french_message({"type": "something_new", "msg": "Original"}) == "Original"
    assert french_message({"type": "greater_than"}) == "doit être supérieur"
    assert french_message({"type": "enum"}) == "valeur non reconnue"
