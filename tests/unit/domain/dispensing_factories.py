"""Builders of fictitious products and prescriptions for the dispensing rule tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lgo.domain.prescription import Prescription, PrescriptionLine, PrescriptionSource
from lgo.domain.products import Pack, PackForm, Product, RegulatoryList, ean13_check_digit


def cip13(seven: str) -> str:
    first12 = "34009" + seven
    return first12 + str(ean13_check_digit(first12))


PACK_30 = Pack(cip13("1000030"), units=30, price_cents=500)
PACK_28 = Pack(cip13("1000028"), units=28, price_cents=480)
PACK_90 = Pack(cip13("1000090"), units=90, price_cents=1300)


def product(regulatory_list: RegulatoryList = RegulatoryList.NONE, **kwargs: object) -> Product:
    values: dict[str, object] = {
        "code": "60000001",
        "name": "PRODUIT FICTIF 10 mg cp",
        "regulatory_list": regulatory_list,
        "molecule": "fictivol",
        "generic_group": "G-FICT",
        "packs": (PACK_30,),
    }
    values.update(kwargs)
    return Product(**values)  # type: ignore[arg-type]


def line(prod: Product | None = None, **kwargs: object) -> PrescriptionLine:
    values: dict[str, object] = {
        "line_no": 1,
        "product": prod or product(),
        "units_per_day": Decimal(1),
        "duration_days": 30,
    }
    values.update(kwargs)
    return PrescriptionLine(**values)  # type: ignore[arg-type]


def prescription(
    *lines: PrescriptionLine, prescribed_on: date = date(2026, 2, 1), **kwargs: object
) -> Prescription:
    return Prescription(
        prescription_id="01S2TBPZ2JCNZZYGHZ",
        source=PrescriptionSource.EPRESCRIPTION,
        prescribed_on=prescribed_on,
        prescriber_rpps="10101010109",
        lines=lines or (line(),),
        **kwargs,  # type: ignore[arg-type]
    )


__all__ = ["PACK_28", "PACK_30", "PACK_90", "PackForm", "cip13", "line", "prescription", "product"]
