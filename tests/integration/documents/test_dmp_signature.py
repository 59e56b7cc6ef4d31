"""The DMP caller assertion is an XML-DSig made with the CPS card's authentication key; the XDS.b
simulator verifies it (signxml, test CA) over real HTTP and takes the caller from the signed copy:
valid accepted, tampered or unsigned refused (WS-Security FailedCheck), no card → indirect call."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from lxml import etree

from lgo.national.dmp import DmpAccessRefused, DmpAuthenticationFailed, DmpClient
from lgo.national.dmp_auth import VIHF, DmpAuthenticator, card_authenticator
from lgo.national.transport import NationalHttpClient, RetryPolicy
from tests.fixtures.documents import FICTIVE_NIR, FICTIVE_RPPS, sim_control
from tests.fixtures.signing import SoftwareCard

pytestmark = pytest.mark.integration
OID = "1.2.250.1.213.1.4.10"
STRUCTURE = "1750000000"


def _client(dmp_sim: str, authenticator: DmpAuthenticator | None) -> DmpClient:
    http = NationalHttpClient("dmp", dmp_sim + "/dmp", timeout_s=5.0, retry=RetryPolicy(attempts=1))
    return DmpClient(http, finess="750000000", authenticator=authenticator)


def _calls(dmp_sim: str) -> list[dict[str, str]]:
    response = httpx.get(f"{dmp_sim}/_sim/dmp/calls", timeout=5)
    response.raise_for_status()
    answer: list[dict[str, str]] = response.json()
    return answer


@pytest.fixture
def card() -> SoftwareCard:
    return SoftwareCard()


def test_a_card_signed_call_is_accepted_and_names_the_card_holder(
    dmp_sim: str, card: SoftwareCard
) -> None:
    with _client(dmp_sim, card_authenticator(lambda: card, STRUCTURE)) as client:
        assert client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS) == []
        assert len(card.signed) == 1
        # The patient blocks the card holder: the signed identity is the one checked, whatever
        # the unsigned context header says (it names FICTIVE_RPPS).
        sim_control(
            dmp_sim,
            "patients",
            {"ins": FICTIVE_NIR, "oid": OID, "blocked": [card.professional.idnat]},
        )
        with pytest.raises(DmpAccessRefused):
            client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS)


def _tampered(card: SoftwareCard) -> DmpAuthenticator:
    sign = card_authenticator(lambda: card, STRUCTURE)

    def authenticate(message_id: str) -> etree._Element | None:
        signed = sign(message_id)
        assert signed is not None
        signed.find(f"{{{VIHF}}}Structure").text = "1999999999"  # type: ignore[union-attr]
        return signed

    return authenticate


def _unsigned(card: SoftwareCard) -> DmpAuthenticator:
    sign = card_authenticator(lambda: card, STRUCTURE)

    def authenticate(message_id: str) -> etree._Element | None:
        signed = copy.deepcopy(sign(message_id))
        assert signed is not None
        signed.remove(signed[-1])  # the ds:Signature
        return signed

    return authenticate


@pytest.mark.parametrize("forge", [_tampered, _unsigned], ids=["tampered", "unsigned"])
def test_a_bad_or_missing_signature_is_refused(
    dmp_sim: str, card: SoftwareCard, forge: Any
) -> None:
    with _client(dmp_sim, forge(card)) as client, pytest.raises(DmpAuthenticationFailed):
        client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS)
    assert _calls(dmp_sim)[-1]["outcome"].startswith("authentication:")


def test_without_a_card_the_call_is_indirect(dmp_sim: str) -> None:
    with _client(dmp_sim, card_authenticator(lambda: None, STRUCTURE)) as client:
        assert client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS) == []
    assert _calls(dmp_sim)[-1]["outcome"] == "Success"
