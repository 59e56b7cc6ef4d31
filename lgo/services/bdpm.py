"""Import the ANSM "Base de données publique des médicaments" (BDPM) into the product catalogue.

The BDPM is published as tab-separated text files without a header line, in Windows-1252 (older
downloads) or UTF-8; values are never quoted. Files and columns read here (1-based):

- ``CIS_bdpm.txt`` (required): 1 code CIS, 2 dénomination, 3 forme pharmaceutique.
- ``CIS_CIP_bdpm.txt`` (required): 1 code CIS, 3 libellé de la présentation (pack size is parsed
  from it: "plaquette(s) … de 30 comprimé(s)", "3 plaquette(s) … de 10 comprimé(s)",
  "1 flacon(s) … de 100 ml"), 7 code CIP13, 10 prix du médicament in euros ("2,18"; a comma also
  separates thousands: "1,234,56").
- ``CIS_GENER_bdpm.txt`` (optional): 1 identifiant du groupe générique, 3 code CIS, 4 type
  (0 princeps, 1 générique, 2 générique par complémentarité posologique, 4 générique substituable).
- ``CIS_COMPO_bdpm.txt`` (optional): 1 code CIS, 4 dénomination de la substance, 7 nature
  (SA substance active, FT fraction thérapeutique), 8 numéro de liaison SA/FT. The molecule is the
  FT of each link when there is one (METFORMINE rather than CHLORHYDRATE DE METFORMINE).
- ``CIS_CPD_bdpm.txt`` (optional): 1 code CIS, 2 condition de prescription et de délivrance;
  "liste I", "liste II" and "stupéfiant(s)" give the regulatory list.

Not derivable from the BDPM and left at their defaults: assimilé-stupéfiant status, maximum
durations, fractionnement, contraceptive flag, ATC class.

The result is written atomically as ``catalog.json`` (what the dispensing service loads at start):
``{"products": [...]}`` plus ``generic_types`` (CIS → princeps/générique) for ``lgo catalog show``.
A bad file changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lgo.core.errors import LgoError
from lgo.domain.products import Pack, PackForm, Product, RegulatoryList, is_valid_cip13
from lgo.services.prescriptions import CATALOG_FILE, MAX_CATALOG_BYTES

MAX_FILE_BYTES = 64 * 1024 * 1024  # the full CIS_CIP_bdpm.txt is about 4 MB
REQUIRED = ("CIS_bdpm.txt", "CIS_CIP_bdpm.txt")
GENERIC_TYPES = {
    "0": "princeps",
    "1": "générique",
    "2": "générique par complémentarité posologique",
    "4": "générique substituable",
}
_COUNTABLE = (
    r"comprim|gélule|gelule|capsule|sachet|suppositoire|ampoule|pastille|lyophilisat|ovule"
    r"|dose|récipient|recipient|patch|dispositif|timbre|stylo|seringue|film"
)
_UNITS_RE = re.compile(rf"\bde (\d+) (?:{_COUNTABLE})", re.IGNORECASE)
_LEADING_RE = re.compile(r"^\s*(\d+)\s")


class BdpmError(LgoError):
    slug = "bdpm-invalid"
    status = 422
    title = "Fichiers BDPM illisibles : catalogue inchangé"


@dataclass
class _Draft:
    cis: str
    name: str
    form: str
    packs: list[Pack] = field(default_factory=list)
    generic_group: str | None = None
    generic_type: str | None = None
    molecule: str | None = None
    regulatory_list: RegulatoryList = RegulatoryList.NONE


@dataclass(frozen=True)
class ImportSummary:
    products: int
    packs: int
    generic_groups: int
    skipped_rows: int
    path: Path


def _rows(path: Path, min_columns: int) -> Iterator[list[str]]:
    """Tab-separated rows; blank lines and rows with too few columns are skipped by the caller."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BdpmError(f"{path.name} : fichier trop volumineux")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # older downloads are Windows-1252
    for line in text.splitlines():
        if line.strip():
            cells = [cell.strip() for cell in line.split("\t")]
            yield cells if len(cells) >= min_columns else []


def pack_units(label: str) -> int:
    """Dosage units in a pack from its BDPM label; 1 when the pack is one bottle, tube, etc."""
    found = _UNITS_RE.findall(label)
    leading = _LEADING_RE.match(label)
    containers = int(leading.group(1)) if leading else 1
    # "3 plaquette(s) … de 10 comprimé(s)" = 30; "30 sachet(s) … de 5 g" = 30; "1 flacon … de
    # 100 ml" = 1 (a bottle is dispensed whole).
    per_container = int(found[-1]) if found else 1
    return max(containers * per_container, 1)


def pack_form(label: str) -> PackForm:
    text = label.lower()
    for word, form in (
        ("sachet", PackForm.SACHET_DOSE),
        ("plaquette", PackForm.BLISTER),
        ("flacon", PackForm.BOTTLE),
        ("tube", PackForm.TUBE),
    ):
        if word in text:
            return form
    return PackForm.OTHER


def price_cents(raw: str) -> int:
    """``"2,18"`` → 218; ``"1,234,56"`` → 123456 (the last comma is the decimal one); blank → 0."""
    text = raw.replace(" ", "").replace("\u00a0", "")
    if not text:
        return 0
    head, _, cents = text.rpartition(",")
    number = f"{head.replace(',', '')}.{cents}" if head else cents
    try:
        return max(int(Decimal(number) * 100), 0)
    except InvalidOperation:
        return 0


def regulatory_list(condition: str) -> RegulatoryList | None:
    text = condition.lower()
    if "stupéfiant" in text or "stupefiant" in text:
        return RegulatoryList.STUPEFIANT
    if re.search(r"\bliste ii\b", text):
        return RegulatoryList.LIST_II
    if re.search(r"\bliste i\b", text):
        return RegulatoryList.LIST_I
    return None


_STRENGTH = {
    RegulatoryList.NONE: 0,
    RegulatoryList.LIST_II: 1,
    RegulatoryList.LIST_I: 2,
    RegulatoryList.STUPEFIANT: 3,
}


def _specialities(folder: Path) -> dict[str, _Draft]:
    drafts: dict[str, _Draft] = {}
    for cells in _rows(folder / "CIS_bdpm.txt", 3):
        if cells and cells[0].isdigit():
            drafts[cells[0]] = _Draft(cis=cells[0], name=cells[1][:200], form=cells[2])
    if not drafts:
        raise BdpmError("CIS_bdpm.txt : aucune spécialité lue")
    return drafts


def _presentations(folder: Path, drafts: dict[str, _Draft]) -> int:
    skipped = 0
    for cells in _rows(folder / "CIS_CIP_bdpm.txt", 7):
        draft = drafts.get(cells[0]) if cells else None
        cip13 = cells[6] if cells else ""
        if draft is None or not is_valid_cip13(cip13):
            skipped += 1
            continue
        label = cells[2]
        price = price_cents(cells[9]) if len(cells) > 9 else 0
        draft.packs.append(Pack(cip13, pack_units(label), price, pack_form(label), label[:200]))
    return skipped


def _generics(folder: Path, drafts: dict[str, _Draft]) -> None:
    path = folder / "CIS_GENER_bdpm.txt"
    if not path.exists():
        return
    for cells in _rows(path, 4):
        draft = drafts.get(cells[2]) if cells else None
        if draft is not None and cells[0]:
            draft.generic_group = f"bdpm:{cells[0]}"
            draft.generic_type = GENERIC_TYPES.get(cells[3], cells[3])


def _compositions(folder: Path, drafts: dict[str, _Draft]) -> None:
    path = folder / "CIS_COMPO_bdpm.txt"
    if not path.exists():
        return
    by_link: dict[str, dict[str, tuple[str, str]]] = {}
    for cells in _rows(path, 8):
        if cells and cells[0] in drafts and cells[6] in ("SA", "FT"):
            links = by_link.setdefault(cells[0], {})
            kept = links.get(cells[7])
            if kept is None or (cells[6] == "FT" and kept[0] == "SA"):
                links[cells[7]] = (cells[6], cells[3])
    for cis, links in by_link.items():
        names = [name.lower() for _, name in (links[k] for k in sorted(links))]
        drafts[cis].molecule = " + ".join(names)[:200] or None


def _conditions(folder: Path, drafts: dict[str, _Draft]) -> None:
    path = folder / "CIS_CPD_bdpm.txt"
    if not path.exists():
        return
    for cells in _rows(path, 2):
        draft = drafts.get(cells[0]) if cells else None
        found = regulatory_list(cells[1]) if draft is not None else None
        if (
            draft is not None
            and found is not None
            and _STRENGTH[found] > _STRENGTH[draft.regulatory_list]
        ):
            draft.regulatory_list = found  # the strictest condition wins


def read_bdpm(folder: Path) -> tuple[list[_Draft], int]:
    """Parse the folder; raises :class:`BdpmError` when a required file is missing or unusable."""
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise BdpmError(f"fichier(s) manquant(s) : {', '.join(missing)}")
    drafts = _specialities(folder)
    skipped = _presentations(folder, drafts)
    _generics(folder, drafts)
    _compositions(folder, drafts)
    _conditions(folder, drafts)
    kept = [d for d in drafts.values() if d.packs]
    if not kept:
        raise BdpmError("CIS_CIP_bdpm.txt : aucune présentation avec un CIP13 valide")
    return kept, skipped


def _product(draft: _Draft) -> Product:
    return Product(
        code=draft.cis,
        name=draft.name,
        regulatory_list=draft.regulatory_list,
        molecule=draft.molecule,
        generic_group=draft.generic_group,
        packs=tuple(draft.packs),
    )


def _product_json(product: Product) -> dict[str, Any]:
    data = asdict(product)
    data["regulatory_list"] = product.regulatory_list.value
    data["packs"] = [{**asdict(p), "form": p.form.value} for p in product.packs]
    return data


def import_bdpm(folder: Path, state_dir: Path) -> ImportSummary:
    """Read the BDPM files in ``folder`` and replace ``state_dir/catalog.json`` atomically."""
    drafts, skipped = read_bdpm(folder)
    products = [_product(d) for d in drafts]
    document = {
        "source": "bdpm",
        "imported_at": datetime.now(UTC).isoformat(),
        "products": [_product_json(p) for p in products],
        "generic_types": {d.cis: d.generic_type for d in drafts if d.generic_type},
    }
    text = json.dumps(document, ensure_ascii=False, sort_keys=True)
    if len(text.encode()) > MAX_CATALOG_BYTES:
        raise BdpmError("catalogue trop volumineux pour le service")
    target = state_dir / CATALOG_FILE
    _write_atomically(target, text)
    return ImportSummary(
        products=len(products),
        packs=sum(len(p.packs) for p in products),
        generic_groups=len({p.generic_group for p in products if p.generic_group}),
        skipped_rows=skipped,
        path=target,
    )


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".catalog-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def find_pack(state_dir: Path, cip13: str) -> tuple[Product, Pack, str | None] | None:
    """The catalogue entry of ``cip13`` and its generic type (BDPM import), or None."""
    from lgo.services.prescriptions import load_catalog

    path = state_dir / CATALOG_FILE
    if not path.is_file():
        return None
    catalog = load_catalog(path)
    product, pack = catalog.product(cip13), catalog.pack(cip13)
    if product is None or pack is None:
        return None
    try:
        types = json.loads(path.read_text(encoding="utf-8")).get("generic_types") or {}
    except ValueError:
        types = {}
    kind = types.get(product.code)
    return product, pack, kind if isinstance(kind, str) else None
