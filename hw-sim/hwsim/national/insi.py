"""INSi teleservice simulator: SOAP 1.2 search of the INS by identity traits or by carte Vitale.

Mounted under ``/insi``; the endpoint is ``POST /insi/lps`` (as the real qualification URL
``…/lps``). The contract follows the public WSDL ``DESIR_ICIR_EXP_1.5.0`` as used by public clients
(reference domain.md §3.1): headers ``ContexteBAM``, ``ContexteLPS`` (IDAM = software number),
``wsa:Action``, ``wsa:MessageID``; bodies ``RECSANSVITALE`` (ns ``INSiRecSans``) and ``RECVITALE``
(ns ``INSiRecVit``); answer ``RESULTAT`` (ns ``INSiResultat``) with ``CR/CodeCR`` 00, 01 or 02.

Identities come from ``fixtures/national/insi.toml`` (fictitious, keys computed here). Faults:

- an unknown IDAM answers ``siram_100`` / ``desir_550`` (as the real service);
- a fixture identity with ``panne = "siram_40"`` always answers that fault;
- ``POST /_sim/insi/next`` queues faults for the next requests: ``siram_40`` (service down),
  ``siram_100``, ``cert_expired`` (``siram_33``/``desir_33``: code chosen by the simulator, the real
  one is not public), ``http_503``, ``not_xml``, ``doctype``, ``billion_laughs``, ``xxe``,
  ``oversize``, ``deep``, ``delay`` (sleeps ``delay_s`` then answers normally).

``GET /_sim/insi/requests`` lists what was asked (action, traits or matricules, auth mode) for
tests; ``POST /_sim/insi/reset`` clears queue and record. Authentication: a ``wsse:Security``
header means "CPS": it must carry an ``AssertionPS`` XML-DSig signed by the card of the professional
it names, for this ``MessageID`` (:mod:`hwsim.national.assertion`), else the fault ``siram_33`` /
``desir_34`` (codes chosen by the simulator); its absence means the organisation certificate
(mutual TLS is terminated by the server in front; this app does not see the certificate).
"""

from __future__ import annotations

import asyncio
import threading
import tomllib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from lxml import etree
from pydantic import BaseModel, Field

from hwsim.fixtures.people import with_nir_key
from hwsim.national.assertion import AssertionRefused, verify_assertion
from hwsim.national.context import ServiceMount, SimDep, SimState

SERVICE: Final = "insi"
FIXTURE_PATH: Final = Path(__file__).resolve().parent.parent / "fixtures" / "national" / "insi.toml"
MAX_REQUEST_BYTES: Final = 64 * 1024

SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://www.w3.org/2005/08/addressing"
CTXLPS: Final = "urn:siram:lps:ctxlps"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
ASSERTION_PS: Final = "urn:lgo:insi:assertion-ps"
REC_SANS: Final = "http://www.cnamts.fr/INSiRecSans"
REC_VIT: Final = "http://www.cnamts.fr/INSiRecVit"
RESULT: Final = "http://www.cnamts.fr/INSiResultat"
SIRAM: Final = "urn:siram"
ACTION_TRAITS: Final = "urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecTraitsIdentite"
ACTION_VITALE: Final = "urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecCarteVitale"
OID_NIR_TEST: Final = "1.2.250.1.213.1.4.10"
SOAP_CONTENT_TYPE: Final = "application/soap+xml; charset=utf-8"

Fault = Literal[
    "siram_40",
    "siram_100",
    "cert_expired",
    "http_503",
    "not_xml",
    "doctype",
    "billion_laughs",
    "xxe",
    "oversize",
    "deep",
    "delay",
]


@dataclass(frozen=True)
class HistoricIns:
    nir: str
    oid: str
    start: str | None
    end: str | None


@dataclass(frozen=True)
class Identity:
    nir: str
    oid: str
    birth_name: str
    given_names: tuple[str, ...]
    sex: str
    birth_date: str
    birthplace: str | None
    vitale_od: str | None = None
    rank: int = 1
    history: tuple[HistoricIns, ...] = ()
    outage: str | None = None

    def matches_traits(self, traits: dict[str, str]) -> bool:
        first = traits.get("Prenom", "")
        names_ok = first in self.given_names or first == " ".join(self.given_names)
        place = traits.get("LieuNaissance")
        return (
            names_ok
            and traits.get("NomNaissance") == self.birth_name
            and traits.get("Sexe") == self.sex
            and traits.get("DateNaissance") == self.birth_date
            and (not place or place == self.birthplace)
        )

    def matches_vitale(self, individual: str | None, od: str | None, date: str, rank: int) -> bool:
        if date != self.birth_date:
            return False
        return individual == self.nir or (od == self.vitale_od and rank == self.rank)


@dataclass
class InsiState:
    identities: tuple[Identity, ...]
    authorised_idams: frozenset[str]
    queued: list[tuple[Fault, float]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self) -> tuple[Fault, float] | None:
        with self.lock:
            return self.queued.pop(0) if self.queued else None

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)


def _history(raw: dict[str, Any]) -> HistoricIns:
    return HistoricIns(
        nir=with_nir_key(raw["nir_base"]),
        oid=raw.get("oid", OID_NIR_TEST),
        start=raw.get("date_debut"),
        end=raw.get("date_fin"),
    )


def _identity(raw: dict[str, Any]) -> Identity:
    od = raw.get("vitale_od_base")
    return Identity(
        nir=with_nir_key(raw["nir_base"]),
        oid=raw.get("oid", OID_NIR_TEST),
        birth_name=raw["nom"],
        given_names=tuple(raw["prenoms"]),
        sex=raw["sexe"],
        birth_date=raw["date_naissance"],
        birthplace=raw.get("lieu"),
        vitale_od=with_nir_key(od) if od else None,
        rank=int(raw.get("rang", 1)),
        history=tuple(_history(h) for h in raw.get("historique", [])),
        outage=raw.get("panne"),
    )


def load_state(path: Path = FIXTURE_PATH) -> InsiState:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return InsiState(
        identities=tuple(_identity(raw) for raw in data["identite"]),
        authorised_idams=frozenset(data["idam_autorises"]),
    )


def setup(sim: SimState) -> None:
    """(Re)build the INSi store from ``insi.toml`` in the simulator's fixtures folder."""
    sim.stores[SERVICE] = load_state(sim.fixtures_dir / FIXTURE_PATH.name)


def _store(sim: SimState) -> InsiState:
    store: InsiState = sim.stores[SERVICE]
    return store


# --- parsing the request (hwsim keeps its own hardened parser: it never imports lgo) ---------


class BadRequestXml(Exception):
    pass


def _parse(body: bytes) -> etree._Element:
    # A NUL byte means UTF-16/32, which would hide a DOCTYPE from the byte scan: UTF-8 only.
    forbidden = (b"<!DOCTYPE", b"<!ENTITY", b"\x00")
    if len(body) > MAX_REQUEST_BYTES or any(marker in body for marker in forbidden):
        raise BadRequestXml("request refused")
    parser = etree.XMLParser(
        resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False
    )
    try:
        return etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise BadRequestXml(str(exc)) from None


def _text(parent: etree._Element, path: str, ns: dict[str, str]) -> str | None:
    found = parent.find(path, ns)
    return found.text.strip() if found is not None and found.text else None


def _matricule(parent: etree._Element | None) -> str | None:
    if parent is None:
        return None
    ns = {"v": REC_VIT}
    number, key = _text(parent, "v:NumIdentifiant", ns), _text(parent, "v:Cle", ns)
    return f"{number}{key}" if number and key else None


# --- building answers -------------------------------------------------------------------------


def _envelope(body_child: etree._Element) -> bytes:
    envelope = etree.Element(etree.QName(SOAP, "Envelope"), nsmap={"soap": SOAP})
    body = etree.SubElement(envelope, etree.QName(SOAP, "Body"))
    body.append(body_child)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def _fault_xml(sender: bool, subcode: str, reason: str, desir: str, detail: str) -> bytes:
    fault = etree.Element(etree.QName(SOAP, "Fault"), nsmap={"soap": SOAP})
    code = etree.SubElement(fault, etree.QName(SOAP, "Code"))
    etree.SubElement(code, etree.QName(SOAP, "Value")).text = (
        "soap:Sender" if sender else "soap:Receiver"
    )
    sub = etree.SubElement(code, etree.QName(SOAP, "Subcode"))
    etree.SubElement(sub, etree.QName(SOAP, "Value")).text = f"soap:{subcode}"
    reason_el = etree.SubElement(fault, etree.QName(SOAP, "Reason"))
    text = etree.SubElement(reason_el, etree.QName(SOAP, "Text"))
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")
    text.text = reason
    detail_el = etree.SubElement(fault, etree.QName(SOAP, "Detail"))
    error = etree.SubElement(detail_el, etree.QName(SIRAM, "Erreur"), nsmap={"siram": SIRAM})
    error.set("code", desir)
    error.set("severite", "erreur")
    error.set("messageID", f"uuid:{uuid.uuid4()}")
    error.text = detail
    return _envelope(fault)


FAULTS: Final[dict[str, tuple[bool, str, str, str, str]]] = {
    "siram_100": (
        True,
        "siram_100",
        "L'accès par ce progiciel au service n'est pas autorisé. Contactez l'éditeur du "
        "progiciel ou votre responsable informatique.",
        "desir_550",
        "Numéro d'autorisation du logiciel inconnu.",
    ),
    "siram_40": (
        False,
        "siram_40",
        "Le service est temporairement inaccessible. Veuillez renouveler votre demande "
        "ultérieurement.",
        "desir_40",
        "Service indisponible.",
    ),
    "cert_expired": (
        True,
        "siram_33",
        "L'authentification a échoué : certificat expiré.",
        "desir_33",
        "Certificat d'authentification expiré.",
    ),
    "assertion_refused": (
        True,
        "siram_33",
        "L'authentification a échoué : AssertionPS non signée ou signature invalide.",
        "desir_34",
        "Signature XML de l'AssertionPS absente ou invalide.",
    ),
}


def _fault_response(name: str) -> Response:
    sender, subcode, reason, desir, detail = FAULTS[name]
    return Response(
        _fault_xml(sender, subcode, reason, desir, detail),
        status_code=400 if sender else 500,
        media_type=SOAP_CONTENT_TYPE,
    )


def _result(code: str, identity: Identity | None = None) -> bytes:
    labels = {"00": "OK", "01": "Aucune identite trouvee", "02": "Plusieurs identites trouvees"}
    result = etree.Element(etree.QName(RESULT, "RESULTAT"), nsmap={None: RESULT})  # type: ignore[dict-item]
    cr = etree.SubElement(result, etree.QName(RESULT, "CR"))
    etree.SubElement(cr, etree.QName(RESULT, "CodeCR")).text = code
    etree.SubElement(cr, etree.QName(RESULT, "LibelleCR")).text = labels[code]
    if identity is not None:
        _individual(result, identity)
    return _envelope(result)


def _id_block(parent: etree._Element, tag: str, nir: str, oid: str) -> etree._Element:
    block = etree.SubElement(parent, etree.QName(RESULT, tag))
    id_el = etree.SubElement(block, etree.QName(RESULT, "IdIndividu"))
    etree.SubElement(id_el, etree.QName(RESULT, "NumIdentifiant")).text = nir[:13]
    etree.SubElement(id_el, etree.QName(RESULT, "Cle")).text = nir[13:]
    etree.SubElement(block, etree.QName(RESULT, "OID")).text = oid
    return block


def _individual(result: etree._Element, identity: Identity) -> None:
    individual = etree.SubElement(result, etree.QName(RESULT, "INDIVIDU"))
    _id_block(individual, "INSACTIF", identity.nir, identity.oid)
    for old in identity.history:
        block = _id_block(individual, "INSHISTO", old.nir, old.oid)
        if old.start:
            etree.SubElement(block, etree.QName(RESULT, "DateDeb")).text = old.start
        if old.end:
            etree.SubElement(block, etree.QName(RESULT, "DateFin")).text = old.end
    tiq = etree.SubElement(individual, etree.QName(RESULT, "TIQ"))
    values = [
        ("NomNaissance", identity.birth_name),
        ("Prenom", identity.given_names[0]),
        ("ListePrenom", " ".join(identity.given_names)),
        ("Sexe", identity.sex),
        ("DateNaissance", identity.birth_date),
        ("LieuNaissance", identity.birthplace),
    ]
    for tag, value in values:
        if value:
            etree.SubElement(tiq, etree.QName(RESULT, tag)).text = value


def _hostile(name: str) -> bytes:
    if name == "doctype":
        return b'<?xml version="1.0"?><!DOCTYPE x [<!ELEMENT x ANY>]><x/>'
    if name == "billion_laughs":
        lines = [b'<!ENTITY l0 "lol">'] + [
            f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">'.encode() for i in range(1, 10)
        ]
        return b'<?xml version="1.0"?><!DOCTYPE r [' + b"".join(lines) + b"]><r>&l9;</r>"
    if name == "xxe":
        return (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
        )
    if name == "deep":
        return b"<a>" * 20_000 + b"</a>" * 20_000  # under the size cap, over any depth limit
    return b"<html><body>502 Bad Gateway</body></html>" if name == "not_xml" else b""


async def _endless_reply(total: int = 8 * 1024 * 1024) -> AsyncIterator[bytes]:
    """An 8 MiB SOAP-looking reply, streamed so the simulator itself stays small in memory."""
    yield f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'.encode()
    chunk = b"<p>" + b"A" * 65_536 + b"</p>"
    for _ in range(total // len(chunk)):
        yield chunk


# --- the endpoint -----------------------------------------------------------------------------

router = APIRouter(tags=["insi"])


def _search(
    store: InsiState, root: etree._Element, action: str, entry: dict[str, Any]
) -> list[Identity]:
    body = root.find(f"{{{SOAP}}}Body")
    if body is None:
        raise BadRequestXml("no Body")
    if action == ACTION_TRAITS:
        request = body.find(f"{{{REC_SANS}}}RECSANSVITALE")
        if request is None:
            raise BadRequestXml("no RECSANSVITALE")
        traits = {etree.QName(el).localname: (el.text or "").strip() for el in request}
        entry["traits"] = traits
        return [i for i in store.identities if i.matches_traits(traits)]
    request = body.find(f"{{{REC_VIT}}}RECVITALE")
    if request is None:
        raise BadRequestXml("no RECVITALE")
    ns = {"v": REC_VIT}
    individual = _matricule(request.find("v:MatriculeIndividu", ns))
    od = _matricule(request.find("v:MatriculeOD", ns))
    date = _text(request, "v:DateNaissance", ns) or ""
    rank = int(_text(request, "v:RangNaissance", ns) or "1")
    entry["vitale"] = {"individu": individual, "od": od, "date": date, "rang": rank}
    return [i for i in store.identities if i.matches_vitale(individual, od, date, rank)]


@router.post("/lps")
async def lps(request: Request, sim: SimDep) -> Response:
    """The INSi SOAP endpoint (both actions)."""
    store = _store(sim)
    body = await request.body()
    queued = store.next_fault()
    if queued is not None and queued[0] == "delay":
        await asyncio.sleep(queued[1])
        queued = None
    if queued is not None:
        return _queued_fault(queued[0])
    try:
        root = _parse(body)
    except BadRequestXml:
        return Response("bad request", status_code=400, media_type="text/plain")
    return _answer(store, root)


def _queued_fault(name: str) -> Response:
    if name in FAULTS:
        return _fault_response(name)
    if name == "http_503":
        return Response("service unavailable", status_code=503, media_type="text/plain")
    if name == "oversize":
        return StreamingResponse(_endless_reply(), media_type=SOAP_CONTENT_TYPE)
    return Response(_hostile(name), status_code=200, media_type=SOAP_CONTENT_TYPE)


def _answer(store: InsiState, root: etree._Element) -> Response:
    ns = {"wsa": WSA, "lps": CTXLPS, "wsse": WSSE}
    action = _text(root, ".//wsa:Action", ns) or ""
    idam = _text(root, ".//lps:LPS/lps:IDAM", ns)
    security = root.find(".//wsse:Security", ns)
    entry: dict[str, Any] = {
        "action": action,
        "idam": idam,
        "auth": "cps" if security is not None else "certificate",
        "signed": False,
        "message_id": _text(root, ".//wsa:MessageID", ns),
    }
    if action not in (ACTION_TRAITS, ACTION_VITALE):
        store.record(entry)
        return Response("unknown action", status_code=400, media_type="text/plain")
    if idam not in store.authorised_idams:
        store.record(entry)
        return _fault_response("siram_100")
    if security is not None:
        refused = _check_assertion(security, entry)
        if refused is not None:
            store.record(entry)
            return refused
    try:
        found = _search(store, root, action, entry)
    except BadRequestXml:
        store.record(entry)
        return Response("bad request", status_code=400, media_type="text/plain")
    store.record(entry)
    outage = next((i.outage for i in found if i.outage), None)
    if outage:
        return _fault_response(outage)
    code = "00" if len(found) == 1 else ("01" if not found else "02")
    payload = _result(code, found[0] if code == "00" else None)
    return Response(payload, media_type=SOAP_CONTENT_TYPE)


def _check_assertion(security: etree._Element, entry: dict[str, Any]) -> Response | None:
    """CPS mode: the ``AssertionPS`` must be XML-DSig signed by the card of the professional it
    names, for this message; else the authentication fault (``siram_33``)."""
    assertion = security.find(f"{{{ASSERTION_PS}}}AssertionPS")
    try:
        if assertion is None:
            raise AssertionRefused("assertion_missing")
        verified = verify_assertion(assertion, ASSERTION_PS, entry["message_id"])
    except AssertionRefused as exc:
        entry["signature_refused"] = str(exc)
        return _fault_response("assertion_refused")
    entry.update(signed=True, idnat=verified.idnat)
    return None


class NextFaults(BaseModel):
    fault: Fault
    count: int = Field(1, ge=1, le=100)
    delay_s: float = Field(0.0, ge=0, le=60)


control = APIRouter(tags=["insi-sim"])


@control.post("/next")
def sim_next(order: NextFaults, sim: SimDep) -> dict[str, int]:
    """Queue SOAP faults or hostile replies for the next INSi calls."""
    store = _store(sim)
    with store.lock:
        store.queued.extend([(order.fault, order.delay_s)] * order.count)
        return {"queued": len(store.queued)}


@control.get("/requests")
def sim_requests(sim: SimDep) -> list[dict[str, Any]]:
    """What the INSi endpoint was asked, in order (fictitious data only)."""
    store = _store(sim)
    with store.lock:
        return list(store.requests)


@control.post("/reset")
def sim_reset(sim: SimDep) -> dict[str, bool]:
    store = _store(sim)
    with store.lock:
        store.queued.clear()
        store.requests.clear()
    return {"reset": True}


mount = ServiceMount(name=SERVICE, prefix="/insi", router=router, setup=setup, control=control)
