"""The daemon's CPS card signs the INSi and DMP authentication assertions (XML-DSig) on the real stack:
OpenSC's PKCS#11 module, hw-sim's virtual IAS-ECC card behind a private pcscd, the national simulator
over HTTP verifying the signatures. A card pulled before or during the signature is ``card-removed``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lxml import etree

from drivers.errors import DriverError
from hwsim.fixtures.people import load_people
from lgo.bootstrap.identity import cps_assertion_signer
from lgo.core.errors import LgoError
from lgo.domain.identity import Traits
from lgo.national.dmp import DmpClient
from lgo.national.dmp_auth import card_authenticator
from lgo.national.insi import InsiConfig, build_insi_client
from lgo.national.transport import NationalHttpClient, RetryPolicy
from lgo.national.xmldsig import sign_enveloped
from lgo.services.signing import card_signature_error
from tests.fixtures.national import NationalSim
from tests.integration.drivers.test_daemon_hardware import Daemon, daemon  # noqa: F401

pytestmark = pytest.mark.integration
PHARMACIST = load_people().professionals["pharmacien"]
CPS = 1
TESTSEUL = Traits.of("Testseul", "Dominique", "M", "19620101")


def _logged_in(d: Daemon, hwsim: Any) -> None:
    reader = hwsim.reader_names[CPS]
    hwsim.client.insert("cps", PHARMACIST.id, reader=CPS)
    d.wait("card.inserted", lambda e: e["reader"] == reader and e["kind"] == "cps")
    answer = d.client.post("/v1/cps/session", json={"kind": "cps", "pin": PHARMACIST.pin})
    assert answer.status_code == 201, answer.text


@pytest.mark.timeout(90)
def test_insi_and_dmp_assertions_are_signed_by_the_card_and_verified(
    daemon: Daemon,
    hwsim: Any,
    national_sim: NationalSim,
) -> None:
    _logged_in(daemon, hwsim)
    config = InsiConfig(idam="LGO-SIM-0001", auth="cps")
    signer = cps_assertion_signer(daemon.container.hardware.cps.signer)
    with build_insi_client(
        national_sim.url("/insi"), config, timeout_s=10.0, signer=signer
    ) as insi:
        assert insi.search_by_traits(TESTSEUL, author_rpps=PHARMACIST.rpps).birth_name == "TESTSEUL"
    [request] = httpx.get(national_sim.url("/_sim/insi/requests"), timeout=5).json()
    assert request["signed"] is True and request["idnat"] == PHARMACIST.idnat

    http = NationalHttpClient(
        "dmp", national_sim.url("/dmp"), timeout_s=10.0, retry=RetryPolicy(attempts=1)
    )
    authenticator = card_authenticator(daemon.container.hardware.cps.signer, "1750000000")
    with DmpClient(http, finess="750000000", authenticator=authenticator) as dmp:
        dmp.find_documents("2991275056999", "1.2.250.1.213.1.4.10", author_rpps=PHARMACIST.rpps)
    calls = httpx.get(national_sim.url("/_sim/dmp/calls"), timeout=5).json()
    assert calls[-1]["outcome"] == "Success"


def _assertion() -> etree._Element:
    return etree.Element("{urn:x}AssertionPS", Id="ps-1")


@pytest.mark.timeout(60)
def test_card_pulled_before_the_signature_is_card_removed(daemon: Daemon, hwsim: Any) -> None:
    _logged_in(daemon, hwsim)
    card = daemon.container.hardware.cps.signer()  # taken by a request just before the card goes
    assert card is not None
    hwsim.client.remove(CPS)
    daemon.wait("session.closed", timeout=10.0)
    with pytest.raises(DriverError) as pulled:
        sign_enveloped(_assertion(), card)
    problem = card_signature_error(pulled.value)
    assert problem.slug == "card-removed" and "signature" in problem.title


@pytest.mark.timeout(60)
def test_card_pulled_during_the_signature_is_card_removed(daemon: Daemon, hwsim: Any) -> None:
    _logged_in(daemon, hwsim)
    hwsim.client.set_fault(CPS, remove_after=1)  # the card goes in the middle of the APDUs
    with pytest.raises(LgoError) as pulled:
        cps_assertion_signer(daemon.container.hardware.cps.signer)(_assertion())
    assert pulled.value.slug == "card-removed", pulled.value
