"""Figures (never pass/fail on time): CDA build + schema validation, HTML rendering, DMP
provide / query / retrieve over real HTTP, MSSanté send over SMTP + STARTTLS with client cert; with
the CI-SIS kit (``LGO_CISIS_KIT_DIR``), the validation time of each document type next to the time
to build it.

Run: .venv/bin/pytest tests/bench/test_documents_bench.py -q -s
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest

from hwsim.mss import MssServer
from lgo.documents.cda import build_document
from lgo.documents.conformance import VOLETS, CisisKit, DocumentChecker
from lgo.documents.models import DocumentBody
from lgo.documents.render import render_html
from lgo.documents.validate import validate_cda
from lgo.national.dmp import DmpClient
from lgo.national.mss import Attachment, MssClient, MssMessage
from tests.fixtures.documents import (
    FICTIVE_NIR,
    FICTIVE_RPPS,
    MssPki,
    make_dispensing_summary,
    make_header,
    make_trod_result,
    make_vaccination_note,
    mss_config,
)

pytestmark = pytest.mark.integration
ROUNDS = 40
OID = "1.2.250.1.213.1.4.10"


def figures(name: str, call: Callable[[], object], rounds: int = ROUNDS) -> None:
    durations = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    p95 = durations[max(int(len(durations) * 0.95) - 1, 0)]
    print(f"\n{name}: median {statistics.median(durations):.2f} ms, p95 {p95:.2f} ms, n={rounds}")


def test_cda_figures() -> None:
    xml = build_document(make_header(), make_dispensing_summary()).xml
    figures(
        "CDA build+validate (dispensing summary)",
        lambda: build_document(make_header(), make_dispensing_summary()),
    )
    figures("CDA schema validation only", lambda: validate_cda(xml))
    figures("CDA -> sanitised HTML", lambda: render_html(xml))
    print(f"\nCDA size: {len(xml)} bytes")


def _median_ms(call: Callable[[], object], rounds: int = ROUNDS) -> float:
    durations = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations)


def test_cisis_validation_next_to_build(
    cisis_kit: CisisKit, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Per document type: build (lgo's schema included), then each validation step of the kit."""
    bodies: list[DocumentBody] = [
        make_dispensing_summary(),
        make_vaccination_note(),
        make_trod_result(),
    ]
    fresh = CisisKit(cisis_kit.kit_dir, tmp_path_factory.mktemp("cisis-bench"))
    print("\nCI-SIS kit, median of", ROUNDS, "rounds (ms):")
    print(
        f"{'document':22} {'build':>7} {'xsd kit':>8} {'schematron':>11} {'check':>7} "
        f"{'compile':>8}"
    )
    checker = DocumentChecker(fresh)
    for body in bodies:
        xml = build_document(make_header(), body).xml
        volet = VOLETS[body.kind]
        started = time.perf_counter()
        fresh.failed_asserts(volet, xml)  # first run compiles the volet's schematron
        compile_ms = (time.perf_counter() - started) * 1000
        build = _median_ms(lambda b=body: build_document(make_header(), b))  # type: ignore[misc]
        xsd = _median_ms(lambda x=xml: fresh.schema_errors(x))  # type: ignore[misc]
        sch = _median_ms(lambda x=xml, v=volet: fresh.failed_asserts(v, x))  # type: ignore[misc]
        check = _median_ms(lambda x=xml, k=body.kind: checker.require(k, x))  # type: ignore[misc]
        print(
            f"{body.kind.value:22} {build:7.2f} {xsd:8.2f} {sch:11.2f} {check:7.2f} "
            f"{compile_ms:8.0f}   ({len(xml)} B)"
        )


def test_dmp_figures(dmp_client: DmpClient) -> None:
    def provide() -> None:
        dmp_client.provide(
            build_document(make_header(), make_vaccination_note()), author_rpps=FICTIVE_RPPS
        )

    figures("DMP provide-and-register (ITI-41, incl. CDA build)", provide)
    figures(
        "DMP stored query (ITI-18), 40+ documents",
        lambda: dmp_client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS),
    )
    entries = dmp_client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS)
    figures(
        "DMP retrieve (ITI-43)",
        lambda: dmp_client.retrieve(
            entries[0].repository_id, entries[0].unique_id, author_rpps=FICTIVE_RPPS
        ),
    )


def test_mss_figures(mss_server: MssServer, mss_pki: MssPki) -> None:
    client = MssClient(mss_config(mss_server, mss_pki))
    cda = build_document(make_header(), make_vaccination_note()).xml
    counter = iter(range(10_000))

    def send() -> None:
        message = MssMessage(
            f"bench-{next(counter)}",
            "dr.exemple@medecin.mssante.fr",
            "Note",
            "Corps",
            (Attachment("note.xml", cda),),
        )
        client.send(message, author_rpps=FICTIVE_RPPS)

    figures("MSSanté send (SMTP + STARTTLS + client cert, new session each)", send, rounds=20)
