"""Identity input is real data, with French messages per field (issue #17 item 5): a typed birth
date is a real calendar date, not in the future; an unknown day or month only as a card gives it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from lgo.domain.identity import with_key
from lgo.services.local_time import pharmacy_today
from lgo.store.models import Patient

pytestmark = pytest.mark.integration


def traits(**changes: Any) -> dict[str, Any]:
    body = {"birth_name": "Testsaisie", "given_names": "Alix", "birth_date": "19800115", "sex": "F"}
    body.update(changes)
    return body


def count(api: Any) -> int:
    with api.container.db.uow(readonly=True) as uow:
        return int(uow.session.execute(select(func.count()).select_from(Patient)).scalar_one())


@pytest.mark.parametrize(
    ("birth_date", "message"),
    [
        ("20230229", "le 29/02/2023 n'existe pas"),
        ("19801315", "le 15/13/1980 n'existe pas"),
        ("19800000", "jour ou mois inconnu (00) accepté seulement tel que lu sur la carte Vitale"),
        (
            (pharmacy_today() + timedelta(days=1)).strftime("%Y%m%d"),
            "date de naissance dans le futur",
        ),
        ("31/12/1999", "date de naissance attendue au format AAAAMMJJ ou AAAA-MM-JJ"),
        ("1999-12-311", "date de naissance attendue au format AAAAMMJJ ou AAAA-MM-JJ"),
    ],
)
def test_typed_birth_date_refused_with_a_french_message_on_the_field(
    api: Any, birth_date: str, message: str
) -> None:
    refused = api.client.post("/v1/patients", json=traits(birth_date=birth_date))
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"] == "urn:lgo:problem:invalid-input"
    by_field = {e["loc"][-1]: e["msg"] for e in problem["errors"]}
    assert by_field["birth_date"].startswith(message), by_field
    assert count(api) == 0  # nothing recorded


def test_other_fields_get_french_messages_too(api: Any) -> None:
    refused = api.client.post(
        "/v1/patients", json={"birth_name": "", "birth_date": "19800115", "sex": "X"}
    )
    by_field = {e["loc"][-1]: e["msg"] for e in refused.json()["errors"]}
    assert by_field["birth_name"] == "trop court : au moins 1 caractère(s)"
    assert by_field["given_names"] == "champ obligatoire"
    assert by_field["sex"].startswith("valeur non reconnue")
    assert not any("should" in m or "String" in m for m in by_field.values())


def test_a_cards_lunar_date_is_kept_as_given(api: Any) -> None:
    created = api.client.post(
        "/v1/patients",
        json=traits(birth_date="19800000", source="vitale", nir=with_key("1805099350012")),
    )
    assert created.status_code == 201, created.text
    assert created.json()["birth_date"] == "19800000"
    typed = api.client.post("/v1/patients", json=traits(birth_date="1980-01-15"))
    assert typed.status_code == 201, typed.text
