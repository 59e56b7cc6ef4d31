"""Prescriptions for the dispensing service: national DTO → domain, JSON codec, product catalogue.

The e-prescription DTO names boxes per delivery and a treatment duration; the rules count days and
dosage units. The catalogue gives pack sizes and generic groups (a real LGO reads a drug database;
here an in-memory catalogue that the daemon or tests fill).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from lgo.core.plain import plain
from lgo.domain.patient_match import PatientTraits, birth_date_digits
from lgo.domain.posology import Posology, with_stated_duration
from lgo.domain.prescription import (
    NonSubstitutionReason,
    Prescription,
    PrescriptionLine,
    PrescriptionSource,
)
from lgo.domain.products import Pack, PackForm, Product, RegulatoryList
from lgo.domain.professions import profession_label, specialty_label
from lgo.national import eprescription as ep
from lgo.services.prescriber_check import PrescriberCheckView

DEFAULT_DURATION_DAYS = 30


class ProductCatalog(Protocol):
    def product(self, cip13: str) -> Product | None: ...

    def pack(self, cip13: str) -> Pack | None: ...


class InMemoryCatalog:
    """Products by the CIP13 of any of their packs. Thread-safe."""

    def __init__(self, products: list[Product] | None = None) -> None:
        self._lock = threading.Lock()
        self._by_cip: dict[str, tuple[Product, Pack]] = {}
        for product in products or []:
            self.add(product)

    def add(self, product: Product) -> None:
        with self._lock:
            for pack in product.packs:
                self._by_cip[pack.cip13] = (product, pack)

    def product(self, cip13: str) -> Product | None:
        with self._lock:
            found = self._by_cip.get(cip13)
        return found[0] if found else None

    @property
    def size(self) -> int:
        with self._lock:
            return len({id(product) for product, _ in self._by_cip.values()})

    def pack(self, cip13: str) -> Pack | None:
        with self._lock:
            found = self._by_cip.get(cip13)
        return found[1] if found else None


_LISTS = {
    ep.RegulatoryList.LIST_I: RegulatoryList.LIST_I,
    ep.RegulatoryList.LIST_II: RegulatoryList.LIST_II,
    ep.RegulatoryList.STUPEFIANT: RegulatoryList.STUPEFIANT,
}


def _product_for(line: ep.PrescriptionLine, catalog: ProductCatalog) -> Product:
    known = catalog.product(line.cip13) if line.cip13 else None
    regulatory = _LISTS.get(line.regulatory_list) if line.regulatory_list else None
    if regulatory is None and line.controlled:
        regulatory = RegulatoryList.STUPEFIANT
    if known is not None:
        if regulatory is not None and regulatory is not known.regulatory_list:
            # The prescription's own classification wins: it is what the prescriber signed.
            known = Product(**{**_product_fields(known), "regulatory_list": regulatory})
        return known
    return Product(
        code=line.cip13 or line.line_id,
        name=line.product_label,
        regulatory_list=regulatory or RegulatoryList.NONE,
    )


def _product_fields(product: Product) -> dict[str, Any]:
    return {f: getattr(product, f) for f in product.__dataclass_fields__}


def _units_per_day(line: ep.PrescriptionLine, catalog: ProductCatalog, days: int) -> Decimal:
    pack = catalog.pack(line.cip13) if line.cip13 else None
    units = max(line.quantity, 1) * (pack.units if pack else 1)
    return Decimal(units) / Decimal(days)


def _counted_units_per_day(
    line: ep.PrescriptionLine, posology: Posology, catalog: ProductCatalog, days: int
) -> Decimal:
    """What the rules count per day: the dosage's units when it defines them and the pack size is
    known; otherwise the prescribed quantity spread over the duration (boxes when the pack size
    is unknown, see ``unit:<n>``)."""
    known_pack = line.cip13 is not None and catalog.pack(line.cip13) is not None
    if known_pack and posology.units_per_day is not None:
        return posology.units_per_day
    return _units_per_day(line, catalog, days)


def from_record(
    record: ep.PrescriptionRecord, catalog: ProductCatalog, patient_id: str | None
) -> Prescription:
    """Map the national DTO to the domain. Line numbers follow the service's line order; the
    national line ids are kept in ``extra`` (``line:<n>``) for the execution report."""
    lines: list[PrescriptionLine] = []
    extra: dict[str, str] = {
        "prescriber_name": f"{record.prescriber.family_name} {record.prescriber.given_name}".strip()
    }
    extra.update(_prescriber_extra(record.prescriber))
    for index, dto in enumerate(record.lines, start=1):
        # Text only: Posology() says so (no figure, the pharmacist gives it).
        posology = with_stated_duration(dto.posology or Posology(), dto.treatment_days)
        days = dto.treatment_days or posology.duration_days or DEFAULT_DURATION_DAYS
        reason = dto.non_substitutable_reason
        lines.append(
            PrescriptionLine(
                line_no=index,
                product=_product_for(dto, catalog),
                units_per_day=_counted_units_per_day(dto, posology, catalog, days),
                duration_days=days,
                posology_text=dto.dosage_text,
                posology=posology,
                renewals=dto.renewals_allowed,
                substitutable=dto.substitutable,
                non_substitution_reason=NonSubstitutionReason(reason.value) if reason else None,
            )
        )
        extra[f"line:{index}"] = dto.line_id
        if dto.cip13 is None or catalog.pack(dto.cip13) is None:
            extra[f"unit:{index}"] = "box"  # pack size unknown: the rules count boxes
    return Prescription(
        prescription_id=record.prescription_id,
        source=PrescriptionSource.EPRESCRIPTION,
        prescribed_on=record.authored_on,
        prescriber_rpps=record.prescriber.rpps,
        lines=tuple(lines),
        patient_id=patient_id,
        extra=extra,
        patient=patient_traits(record.patient),
    )


_SEXES = {"male": "M", "female": "F"}


def patient_traits(patient: ep.PatientIdentity) -> PatientTraits:
    """The prescription's patient as the matching rule compares it. A missing birth date becomes
    ``00000000``: such a prescription only matches its patient by INS."""
    return PatientTraits(
        family_names=(patient.family_name,),
        given_names=patient.given_names,
        birth_date=birth_date_digits(patient.birth_date) if patient.birth_date else "00000000",
        sex=_SEXES.get(patient.sex or "", "U"),
        ins=patient.ins,
        ins_oid=patient.ins_oid,
    )


def _prescriber_extra(prescriber: ep.Prescriber) -> dict[str, str]:
    codes = {
        "prescriber_profession": prescriber.profession_code,
        "prescriber_specialty": prescriber.specialty_code,
        "prescriber_address": prescriber.address,
    }
    return {key: value for key, value in codes.items() if value}


# ---------------------------------------------------------------- JSON codec (cache table)


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def to_json(prescription: Prescription) -> str:
    return json.dumps(plain(prescription), default=_encode, sort_keys=True)


def _pack(data: dict[str, Any]) -> Pack:
    form = PackForm(data.get("form", PackForm.BLISTER.value))
    return Pack(data["cip13"], data["units"], data["price_cents"], form, data.get("label", ""))


def _product(data: dict[str, Any]) -> Product:
    fields = dict(data)
    fields["regulatory_list"] = RegulatoryList(fields["regulatory_list"])
    fields["packs"] = tuple(_pack(p) for p in fields.get("packs", ()))
    return Product(**fields)


def _line(data: dict[str, Any]) -> PrescriptionLine:
    fields = dict(data)
    fields["product"] = _product(fields["product"])
    fields["units_per_day"] = Decimal(fields["units_per_day"])
    reason = fields.get("non_substitution_reason")
    fields["non_substitution_reason"] = NonSubstitutionReason(reason) if reason else None
    fields["posology"] = _posology(fields.get("posology"))
    return PrescriptionLine(**fields)


def _posology(data: dict[str, Any] | None) -> Posology | None:
    if data is None:
        return None
    fields = dict(data)
    for name in ("units_per_day", "max_units_per_day"):
        fields[name] = Decimal(fields[name]) if fields.get(name) is not None else None
    return Posology(**fields)


def from_json(text: str) -> Prescription:
    data = json.loads(text)
    window = data.get("surgery_window")
    return Prescription(
        prescription_id=data["prescription_id"],
        source=PrescriptionSource(data["source"]),
        prescribed_on=date.fromisoformat(data["prescribed_on"]),
        prescriber_rpps=data["prescriber_rpps"],
        lines=tuple(_line(line) for line in data["lines"]),
        patient_id=data.get("patient_id"),
        surgery_window=(
            (date.fromisoformat(window[0]), date.fromisoformat(window[1])) if window else None
        ),
        extra=dict(data.get("extra") or {}),
        patient=_patient(data.get("patient")),
    )


def _patient(data: dict[str, Any] | None) -> PatientTraits | None:
    if data is None:
        return None
    fields = dict(data)
    fields["family_names"] = tuple(fields["family_names"])
    fields["given_names"] = tuple(fields["given_names"])
    return PatientTraits(**fields)


# ---------------------------------------------------------------- catalogue file

CATALOG_FILE = "catalog.json"
MAX_CATALOG_BYTES = 20 * 1024 * 1024


class CatalogError(ValueError):
    """The catalogue file cannot be read; the message says why (no product data in it)."""


def load_catalog(path: Path) -> InMemoryCatalog:
    """Products from a JSON file ``{"products": [...]}`` (fields of :class:`Product`, packs as
    ``{"cip13", "units", "price_cents", "form"}``), e.g. exported from the drug database."""
    if path.stat().st_size > MAX_CATALOG_BYTES:
        raise CatalogError("catalogue file too large")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        products = [_product(item) for item in data["products"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"catalogue unreadable ({type(exc).__name__})") from None
    return InMemoryCatalog(products)


# ---------------------------------------------------------------- views (counter)


def iso_birth_date(digits: str) -> str:
    """``YYYYMMDD`` back to the ISO text a FHIR service gives: full, or partial when the month or
    day is unknown (``1980``, ``1980-05``). A lunar card form that ISO cannot write stays raw."""
    year, month, day = digits[:4], digits[4:6], digits[6:]
    if month == "00" and day == "00":
        return year
    if day == "00" and "01" <= month <= "12":
        return f"{year}-{month}"
    if "01" <= month <= "12" and "01" <= day <= "31":
        return f"{year}-{month}-{day}"
    return digits


@dataclass(frozen=True)
class InsView:
    nir: str
    oid: str | None


@dataclass(frozen=True)
class PrescriptionPatientView:
    family_name: str
    given_names: list[str]
    birth_date: str | None
    sex: str
    ins: InsView | None


def patient_view(traits: PatientTraits | None) -> PrescriptionPatientView | None:
    """The prescription's patient as the counter shows it (None for a typed paper copy)."""
    if traits is None:
        return None
    known = traits.birth_date != "00000000"
    return PrescriptionPatientView(
        family_name=traits.family_names[0],
        given_names=list(traits.given_names),
        birth_date=iso_birth_date(traits.birth_date) if known else None,
        sex=traits.sex,
        ins=InsView(traits.ins, traits.ins_oid) if traits.ins else None,
    )


@dataclass(frozen=True)
class PrescriberView(PrescriberCheckView):
    """The Annuaire check plus who the prescription names."""

    name: str | None
    profession: str | None
    profession_code: str | None
    specialty: str | None
    specialty_code: str | None
    address: str | None


def prescriber_view(prescription: Prescription, check: PrescriberCheckView) -> PrescriberView:
    """The Annuaire check (status, warning, practitioner…) plus who the prescriber is as the
    prescription names them: RPPS, display name, profession and specialty (labels and codes; the
    Annuaire's current role fills what the prescription does not say)."""
    extra = prescription.extra
    practitioner = check.practitioner
    roles = [r for r in practitioner.roles if r.current] if practitioner else []
    profession = extra.get("prescriber_profession") or (roles[0].profession_code if roles else None)
    specialty = extra.get("prescriber_specialty") or (roles[0].specialty_code if roles else None)
    listed = (practitioner.family_name, practitioner.given_name) if practitioner else ()
    name = extra.get("prescriber_name") or " ".join(p for p in listed if p)
    return PrescriberView(
        rpps=prescription.prescriber_rpps,
        status=check.status,
        checked_on=check.checked_on,
        requires_acknowledgement=check.requires_acknowledgement,
        warning=check.warning,
        practitioner=practitioner,
        name=name or None,
        profession=profession_label(profession),
        profession_code=profession,
        specialty=specialty_label(specialty),
        specialty_code=specialty,
        address=extra.get("prescriber_address"),
    )
