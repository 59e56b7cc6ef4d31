"""National DTO → domain prescription, JSON codec round trip, FHIR export validation."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from lgo.bootstrap.dispensing import _catalog
from lgo.domain.posology import NO_DURATION, TEXT_ONLY, Posology
from lgo.domain.prescription import NonSubstitutionReason, PrescriptionSource
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.national import eprescription as ep
from lgo.services.fhir_export import dispensation_bundle
from lgo.services.prescriptions import (
    CatalogError,
    InMemoryCatalog,
    _encode,
    from_json,
    from_record,
    load_catalog,
    to_json,
)

LEVO = "3400999999021"


def record() -> ep.PrescriptionRecord:
    line = ep.PrescriptionLine(
        line_id="L-1",
        cip13=LEVO,
        product_label="LEVOTHYROXINE TEST 75 µg",
        dosage_text="1/j",
        quantity=1,
        treatment_days=30,
        renewals_allowed=2,
        substitutable=False,
        non_substitutable_reason=ep.NonSubstitutableReason.MTE,
        regulatory_list=ep.RegulatoryList.LIST_II,
        status=ep.LineStatus.OPEN,
    )
    return ep.PrescriptionRecord(
        prescription_id="EPTEST0000000000000043",
        authored_on=date(2026, 2, 1),
        prescriber=ep.Prescriber(
            rpps="10000000009", family_name="TESTMEDECIN", given_name="DOMINIQUE"
        ),
        patient=ep.PatientIdentity(family_name="TESTPATIENT"),
        lines=(line,),
        state=ep.PrescriptionState.OPEN,
    )


def test_record_maps_to_domain_with_catalogue_packs() -> None:
    catalog = InMemoryCatalog(
        [
            Product(
                LEVO,
                "LEVOTHYROXINE",
                molecule="lévothyroxine",
                generic_group="G-LEVO",
                packs=(Pack(LEVO, 30, 250),),
            )
        ]
    )
    rx = from_record(record(), catalog, "patient-1")
    line = rx.lines[0]
    assert rx.source is PrescriptionSource.EPRESCRIPTION
    assert (line.units_per_day, line.duration_days, line.renewals) == (Decimal(1), 30, 2)
    assert line.regulatory_list is RegulatoryList.LIST_II  # the prescription's list wins
    assert line.non_substitution_reason is NonSubstitutionReason.MTE
    assert line.product.generic_group == "G-LEVO"
    assert rx.extra["line:1"] == "L-1"
    assert from_json(to_json(rx)) == rx


def test_structured_posology_sets_the_units_and_survives_the_cache() -> None:
    # 1 tablet every other day from the dosage: not the 1/30 of a box the quantity would give.
    posology = Posology(units_per_day=Decimal("0.5"), duration_days=None, reason=NO_DURATION)
    dto = record()
    structured = dto.model_copy(
        update={
            "lines": (
                dto.lines[0].model_copy(
                    update={"posology": posology, "dosage_text": "1 comprimé un jour sur deux"}
                ),
            )
        }
    )
    catalog = InMemoryCatalog([Product(LEVO, "LEVOTHYROXINE", packs=(Pack(LEVO, 30, 250),))])
    line = from_record(structured, catalog, None).lines[0]
    assert (line.units_per_day, line.posology_text) == (
        Decimal("0.5"),
        "1 comprimé un jour sur deux",
    )
    assert line.posology == Posology(Decimal("0.5"), 30, reason=None)  # the stated 30 days
    # pack size unknown: the rules count boxes (1 box over 30 days), the figure is only shown
    boxes = from_record(structured, InMemoryCatalog(), None).lines[0]
    assert (boxes.units_per_day, boxes.posology) == (Decimal(1) / 30, line.posology)
    text_only = from_record(record(), InMemoryCatalog(), None).lines[0]
    assert text_only.posology == Posology(duration_days=30)  # no figure, text-only reason
    assert text_only.posology.units_per_day is None and text_only.posology.reason == TEXT_ONLY
    rx = from_record(structured, catalog, None)
    assert from_json(to_json(rx)) == rx


def test_cached_text_is_unchanged_by_the_faster_encoder() -> None:
    """``to_json`` no longer goes through ``dataclasses.asdict``: the text must stay byte for byte
    what the cache already holds, or every stored copy would look changed (a new version)."""
    rx = from_record(
        record(), InMemoryCatalog([Product(LEVO, "LEVO", packs=(Pack(LEVO, 30, 250),))]), "p-1"
    )
    rx = replace(rx, surgery_window=(date(2026, 2, 1), date(2026, 2, 4)))
    assert rx.patient is not None and rx.lines[0].posology is not None
    as_before = json.dumps(asdict(rx), default=_encode, sort_keys=True)
    assert to_json(rx) == as_before


def test_unknown_product_still_maps() -> None:
    rx = from_record(record(), InMemoryCatalog(), None)
    assert rx.lines[0].product.code == LEVO and rx.lines[0].product.generic_group is None


def body(intervention: str = "substituted") -> dict[str, object]:
    return {
        "id": "3f0c1c9e-0000-4000-8000-000000000001",
        "created_at": "2026-02-03T10:00:00+00:00",
        "patient_id": "p-1",
        "prescription_id": "EPTEST0000000000000043",
        "professional": {"rpps": "10000000009"},
        "lines": [
            {
                "line_no": 1,
                "intervention": intervention,
                "boxes": 1,
                "delivered_cip13": LEVO,
                "designation": "LEVOTHYROXINE",
                "completeness": "FFP",
                "reason": None,
            }
        ],
    }


class Identity:
    def __init__(self, qualified: bool) -> None:
        self.qualified = qualified

    def qualified_ins(self, patient_id: str) -> tuple[str, str] | None:
        return ("299127505699943", "1.2.250.1.213.1.4.10") if self.qualified else None


def test_fhir_bundle_carries_ins_only_when_qualified() -> None:
    qualified = dispensation_bundle(body(), Identity(True))
    patient = qualified["entry"][0]["resource"]
    assert {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": "299127505699943"} in patient[
        "identifier"
    ]
    dispense = qualified["entry"][1]["resource"]
    assert dispense["substitution"]["wasSubstituted"] is True
    assert dispense["type"]["coding"][0]["code"] == "FFP"
    provisional = dispensation_bundle(body(), Identity(False))
    assert len(provisional["entry"][0]["resource"]["identifier"]) == 1


def test_catalogue_file_loads_and_a_broken_one_is_reported(tmp_path: Path) -> None:
    good = tmp_path / "catalog.json"
    good.write_text(
        json.dumps(
            {
                "products": [
                    {
                        "code": "60000001",
                        "name": "LEVOTHYROXINE TEST",
                        "regulatory_list": "none",
                        "molecule": "levothyroxine",
                        "generic_group": "G-LEVO",
                        "packs": [{"cip13": LEVO, "units": 30, "price_cents": 250}],
                    },
                ]
            }
        )
    )
    catalog = load_catalog(good)
    assert catalog.size == 1 and catalog.pack(LEVO).units == 30  # type: ignore[union-attr]
    assert catalog.product(LEVO).generic_group == "G-LEVO"  # type: ignore[union-attr]
    broken = tmp_path / "broken.json"
    broken.write_text('{"products": [{"code": "x", "packs": [{"cip13": "123"}]}]}')
    with pytest.raises(CatalogError):
        load_catalog(broken)
    empty, problem = _catalog(broken)
    assert empty.size == 0 and problem is not None
    assert _catalog(tmp_path / "absent.json")[1] is None
