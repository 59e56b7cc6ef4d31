"""The INSi client against the INSi simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import tracemalloc

import pytest

from hwsim.national.faults import FaultKind, FaultSpec
from lgo.core.errors import PharmacistSessionRequired
from lgo.domain.identity import InsOid, RawBirthDate, Traits, with_key
from lgo.national.errors import MalformedResponse, ServiceTimeout, ServiceUnavailable
from lgo.national.insi import (
    InsiAuthenticationFailed,
    InsiNotFound,
    InsiSeveralFound,
    InsiSoftwareNotAuthorised,
    InsiUnavailable,
    VitaleQuery,
)
from tests.fixtures.national import NationalSim

from .conftest import InsiSim

pytestmark = pytest.mark.integration

TESTSEUL = Traits.of("Testseul", "Dominique", "M", "19620101")


def test_found_by_traits_with_test_oid_and_reference_traits(insi_sim: InsiSim) -> None:
    with insi_sim.client() as client:
        found = client.search_by_traits(TESTSEUL, author_rpps=None)
    assert found.ins.matricule == with_key("1620175112034")
    assert found.ins.oid is InsOid.TEST
    assert (found.birth_name, found.given_names, found.sex) == ("TESTSEUL", ("DOMINIQUE",), "M")
    assert found.birth_date.raw == "19620101"
    assert found.birthplace == "75112"
    [request] = insi_sim.requests()
    assert request["action"].endswith("rechercherInsAvecTraitsIdentite")
    assert request["idam"] == "LGO-SIM-0001"
    assert request["auth"] == "certificate"
    assert request["traits"] == {
        "NomNaissance": "TESTSEUL",
        "Prenom": "DOMINIQUE",
        "Sexe": "M",
        "DateNaissance": "1962-01-01",
    }


def test_accented_lower_case_input_is_sent_upper_case_unaccented(insi_sim: InsiSim) -> None:
    traits = Traits.of("Tèstseul", "dôminique", "m", "1962-01-01")
    with insi_sim.client() as client:
        assert client.search_by_traits(traits, author_rpps=None).birth_name == "TESTSEUL"
    assert insi_sim.requests()[0]["traits"]["NomNaissance"] == "TESTSEUL"  # type: ignore[index]


@pytest.mark.parametrize(
    ("traits", "nir13"),
    [
        (Traits.of("TESTCORSE", "ANTOINE", "M", "19750312"), "175032A004005"),
        (Traits.of("TESTLUNE", "SACHA", "M", "19800000"), "1805099350012"),
        (Traits.of("D'ARTESTE", "Jean-Luc", "M", "19870125"), "1870175056456"),
    ],
    ids=["corsica-2A", "lunar-date", "apostrophe-hyphen"],
)
def test_special_identities_found(insi_sim: InsiSim, traits: Traits, nir13: str) -> None:
    with insi_sim.client() as client:
        found = client.search_by_traits(traits, author_rpps=None)
    assert found.ins.matricule == with_key(nir13)
    assert found.birth_date == traits.birth_date


def test_given_names_tried_one_by_one_and_stop_at_first_found(insi_sim: InsiSim) -> None:
    traits = Traits.of("TESTPRENOMS", "Ola Catarina Maria", "F", "19360621")
    with insi_sim.client() as client:
        found = client.search_by_traits(traits, author_rpps=None)
    assert found.first_name_sent == "CATARINA"
    assert found.given_names == ("CATARINA", "BELLA")
    sent = [r["traits"]["Prenom"] for r in insi_sim.requests()]  # type: ignore[index]
    assert sent == ["OLA", "CATARINA"]


def test_not_found_after_each_name_then_all_names(insi_sim: InsiSim) -> None:
    traits = Traits.of("TESTSEUL", "Pierre Paul", "M", "19620101")
    with insi_sim.client() as client, pytest.raises(InsiNotFound) as info:
        client.search_by_traits(traits, author_rpps=None)
    assert info.value.problem()["type"] == "urn:lgo:problem:insi-not-found"
    sent = [r["traits"]["Prenom"] for r in insi_sim.requests()]  # type: ignore[index]
    assert sent == ["PIERRE", "PAUL", "PIERRE PAUL"]


def test_birth_name_must_be_strictly_identical(insi_sim: InsiSim) -> None:
    with insi_sim.client() as client, pytest.raises(InsiNotFound):
        client.search_by_traits(
            Traits.of("TESTSEULE", "DOMINIQUE", "M", "19620101"), author_rpps=None
        )


def test_several_found_stops_the_loop(insi_sim: InsiSim) -> None:
    traits = Traits.of("TESTDOUBLE", "Alex Jean", "M", "19900505")
    with insi_sim.client() as client, pytest.raises(InsiSeveralFound) as info:
        client.search_by_traits(traits, author_rpps=None)
    assert info.value.status == 409
    assert len(insi_sim.requests()) == 1


def test_birthplace_resolves_homonyms(insi_sim: InsiSim) -> None:
    traits = Traits.of("TESTDOUBLE", "ALEX", "M", "19900505", "69123")
    with insi_sim.client() as client:
        found = client.search_by_traits(traits, author_rpps=None)
    assert found.ins.matricule == with_key("1900569123888")


def test_ins_history_and_nia_oid(insi_sim: InsiSim) -> None:
    with insi_sim.client() as client:
        found = client.search_by_traits(
            Traits.of("TESTHISTO", "PIERRE-ALAIN", "M", "20090714"), author_rpps=None
        )
        nia = client.search_by_traits(
            Traits.of("TESTATTENTE", "MATRICULE", "M", "20090701"), author_rpps=None
        )
        demo = client.search_by_traits(
            Traits.of("TESTDEMO", "JULIE", "F", "19850101"), author_rpps=None
        )
    assert [h.ins.matricule for h in found.history] == [
        with_key("2090763220555"),
        with_key("7090763220444"),
    ]
    assert [h.ins.oid for h in found.history] == [InsOid.TEST, InsOid.NIA]
    assert found.history[0].end == "2019-02-28"
    assert found.knows(found.history[1].ins) and found.knows(found.ins)
    assert nia.ins.oid is InsOid.NIA
    assert demo.ins.oid.is_demo


def test_search_by_vitale_tells_twins_apart_by_rank(insi_sim: InsiSim) -> None:
    mother = with_key("278072B033012")
    with insi_sim.client() as client:
        lea = client.search_by_vitale(
            VitaleQuery("TESTCORSE", RawBirthDate.parse("20150901"), insured_nir=mother, rank=2),
            author_rpps=None,
        )
        paul = client.search_by_vitale(
            VitaleQuery("TESTCORSE", RawBirthDate.parse("20150901"), insured_nir=mother, rank=1),
            author_rpps=None,
        )
        self_read = client.search_by_vitale(
            VitaleQuery(
                "TESTNOM", RawBirthDate.parse("19991231"), individual_nir=with_key("2991275056999")
            ),
            author_rpps=None,
        )
    assert lea.ins.matricule == with_key("215092B033102")
    assert paul.ins.matricule == with_key("115092B033101")
    assert self_read.given_names == ("CAMILLE",)
    first = insi_sim.requests()[0]
    assert first["action"].endswith("rechercherInsAvecCarteVitale")  # type: ignore[union-attr]
    assert first["vitale"] == {"individu": None, "od": mother, "date": "2015-09-01", "rang": 2}


def test_vitale_search_not_found(insi_sim: InsiSim) -> None:
    with insi_sim.client() as client, pytest.raises(InsiNotFound):
        client.search_by_vitale(
            VitaleQuery(
                "TESTNOM", RawBirthDate.parse("19991230"), individual_nir=with_key("2991275056999")
            ),
            author_rpps=None,
        )


def test_unknown_software_number_is_siram_100(insi_sim: InsiSim) -> None:
    with (
        insi_sim.client(idam="FAKE-IDAM") as client,
        pytest.raises(InsiSoftwareNotAuthorised) as info,
    ):
        client.search_by_traits(TESTSEUL, author_rpps=None)
    assert (info.value.siram, info.value.desir) == ("siram_100", "desir_550")
    assert info.value.problem()["siram"] == "siram_100"


def test_fixture_outage_is_siram_40(insi_sim: InsiSim) -> None:
    with insi_sim.client() as client, pytest.raises(InsiUnavailable) as info:
        client.search_by_traits(Traits.of("TESTPANNE", "CLAUDE", "M", "19700101"), author_rpps=None)
    assert info.value.status == 503 and info.value.siram == "siram_40"


@pytest.mark.parametrize(
    ("fault", "error"),
    [("siram_40", InsiUnavailable), ("cert_expired", InsiAuthenticationFailed)],
)
def test_queued_soap_faults_are_typed(
    insi_sim: InsiSim, fault: str, error: type[Exception]
) -> None:
    insi_sim.queue(fault)
    with insi_sim.client() as client, pytest.raises(error):
        client.search_by_traits(TESTSEUL, author_rpps=None)
    with insi_sim.client() as client:  # the fault was for one call only
        assert client.search_by_traits(TESTSEUL, author_rpps=None).birth_name == "TESTSEUL"


def test_http_503_retried_then_unavailable(insi_sim: InsiSim) -> None:
    insi_sim.queue("http_503", count=3)
    with insi_sim.client() as client, pytest.raises(ServiceUnavailable):
        client.search_by_traits(TESTSEUL, author_rpps=None)


def test_http_503_once_is_absorbed_by_a_retry(insi_sim: InsiSim) -> None:
    insi_sim.queue("http_503", count=1)
    with insi_sim.client() as client:
        assert client.search_by_traits(TESTSEUL, author_rpps=None).birth_name == "TESTSEUL"


def test_slow_answer_is_a_timeout(insi_sim: InsiSim) -> None:
    insi_sim.queue("delay", count=3, delay_s=1.0)
    with insi_sim.client(timeout_s=0.2) as client, pytest.raises(ServiceTimeout):
        client.search_by_traits(TESTSEUL, author_rpps=None)


@pytest.mark.parametrize(
    "fault", ["doctype", "billion_laughs", "xxe", "oversize", "deep", "not_xml"]
)
def test_hostile_replies_refused_without_memory_blowup(
    insi_sim_process: InsiSim, fault: str
) -> None:
    insi_sim_process.queue(fault)
    with insi_sim_process.client() as client:
        tracemalloc.start()
        try:
            with pytest.raises(MalformedResponse):
                client.search_by_traits(TESTSEUL, author_rpps=None)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"insi hostile reply {fault}: peak {peak / 1024:.0f} KiB")
    assert peak < 4 * 1024 * 1024  # the oversize reply is 8 MiB; the cap stops reading at 256 KiB


def test_cps_mode_needs_an_open_session_and_sends_nothing_without(insi_sim: InsiSim) -> None:
    with insi_sim.client(auth="cps") as client:
        with pytest.raises(PharmacistSessionRequired):
            client.search_by_traits(TESTSEUL, author_rpps=None)
        with pytest.raises(PharmacistSessionRequired):  # a session but no card key to sign with
            client.search_by_traits(TESTSEUL, author_rpps="10999999998")
    assert insi_sim.requests() == []


def test_generic_malformed_fault_of_the_simulator_is_refused(
    insi_sim: InsiSim, national_sim: NationalSim
) -> None:
    national_sim.faults.arm(FaultSpec(service="insi", kind=FaultKind.MALFORMED, times=1))
    with insi_sim.client() as client, pytest.raises(MalformedResponse):
        client.search_by_traits(TESTSEUL, author_rpps=None)
    [entry] = national_sim.recorder.entries("insi")
    assert entry.method == "POST"
