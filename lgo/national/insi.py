"""INSi client: fetch or verify a patient's INS with the CNAM teleservice (SOAP 1.2).

Contract (reference domain.md §3.1, from the public WSDL ``DESIR_ICIR_EXP_1.5.0``):

- ``rechercherInsAvecTraitsIdentite`` with ``RECSANSVITALE`` (birth name, one ``Prenom``, sex,
  birth date ``YYYY-MM-DD`` lunar allowed, optional birthplace COG). Names go upper-case without
  accents (:func:`lgo.domain.identity.normalise_name`). Given names are tried one by one, then all
  together; the loop stops at the first CR 00 (found) or CR 02 (several found: more names cannot
  make the answer safer), and goes on after CR 01 (not found);
- ``rechercherInsAvecCarteVitale`` with ``RECVITALE`` (matricule of the person and of the insured
  "ouvrant droit", birth name, birth date, rank) from a carte Vitale or apCV read;
- headers ``ContexteBAM``, ``ContexteLPS`` (IDAM = the software's authorisation number),
  ``wsa:Action``, ``wsa:MessageID``; with ``auth="cps"`` a ``wsse:Security`` header carrying an
  ``AssertionPS`` of the professional whose session is open;
- answers ``RESULTAT/CR/CodeCR``: 00 → :class:`InsiIdentity`; 01 → :class:`InsiNotFound`;
  02 → :class:`InsiSeveralFound`; SOAP faults (``siram_NNN`` subcode, ``desir_NNN`` detail) →
  :class:`InsiFault` and subclasses. Replies are parsed with :func:`lgo.core.safe_xml.parse_xml` (size cap,
  no DTD, no entities); a hostile or broken reply is :class:`InsiMalformedResponse`.

Authentication: the organisation certificate (mutual TLS, certificates ``INSI-AUTO``/``INSI-MANU``)
is set on the HTTP transport by :func:`build_insi_client`; the CPS mode needs the RPPS of the open
session for every call, and the ``AssertionPS`` is an XML-DSig (enveloped, exclusive C14N) made by the
CPS card's authentication key (:mod:`lgo.national.xmldsig`); without a card key (e-CPS session) nothing
is sent: INSi cannot authenticate an unsigned assertion.

Every call goes through :class:`lgo.national.transport.NationalHttpClient` (timeouts, retries for this
read-only search, one trace line without payload). No identity trait is ever logged.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import httpx
from lxml import etree

from lgo.core.errors import PharmacistSessionRequired
from lgo.core.safe_xml import XmlRejectedError, parse_xml
from lgo.domain.identity import (
    IdentityRuleError,
    Ins,
    InsOid,
    RawBirthDate,
    Traits,
    check_nir,
    first_name_attempts,
    normalise_name,
)
from lgo.national.errors import MalformedResponse, NationalServiceError, ServiceUnavailable
from lgo.national.profiles.insi import (  # restricted and invented: contracts/insi/profile.json
    ACTION_TRAITS,
    ACTION_VITALE,
    ASSERTION_PS,
    CTXBAM,
    CTXLPS,
    REC_SANS,
    REC_VIT,
    RESULT,
    SIRAM,
)
from lgo.national.transport import NationalHttpClient, ServiceClient

SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
DEFAULT_MAX_REPLY_BYTES: Final = 256 * 1024

AuthMode = Literal["certificate", "cps"]


# --- errors ---------------------------------------------------------------------------------


class InsiError(NationalServiceError):
    slug = "insi-error"
    title = "Erreur du téléservice INSi"


class InsiNotFound(InsiError):
    slug = "insi-not-found"
    status = 404
    title = (
        "Aucune identité trouvée par INSi : vérifier les traits (nom de naissance exact, "
        "prénoms, date et lieu de naissance) sur une pièce d'identité"
    )


class InsiSeveralFound(InsiError):
    slug = "insi-several-found"
    status = 409
    title = "Plusieurs identités trouvées par INSi : préciser le lieu de naissance"


class InsiMalformedResponse(MalformedResponse):
    slug = "insi-malformed-response"
    title = "Réponse illisible ou refusée du téléservice INSi"


class InsiFault(InsiError):
    """A SOAP fault from INSi; ``siram`` and ``desir`` codes are kept for support."""

    slug = "insi-fault"
    title = "Le téléservice INSi a renvoyé une erreur"

    def __init__(self, siram: str, desir: str | None, reason: str) -> None:
        super().__init__(reason or self.title, siram=siram, desir=desir)
        self.siram = siram
        self.desir = desir


class InsiSoftwareNotAuthorised(InsiFault):
    slug = "insi-software-not-authorised"
    status = 502
    title = "Logiciel non autorisé par INSi (numéro d'autorisation) : contacter l'éditeur"


class InsiAuthenticationFailed(InsiFault):
    slug = "insi-authentication-failed"
    status = 502
    title = "Authentification refusée par INSi (certificat ou carte CPS)"


class InsiUnavailable(InsiFault):
    slug = "insi-unavailable"
    status = 503
    title = "Téléservice INSi momentanément indisponible : réessayer plus tard"


FAULT_TYPES: Final[dict[str, type[InsiFault]]] = {
    "siram_100": InsiSoftwareNotAuthorised,
    "siram_33": InsiAuthenticationFailed,
    "siram_40": InsiUnavailable,
}


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InsiConfig:
    idam: str
    software_name: str = "lgo"
    software_version: str = "0.1"
    emitter: str = "lgo"
    auth: AuthMode = "certificate"
    path: str = "/lps"
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES


@dataclass(frozen=True)
class HistoricIns:
    ins: Ins
    start: str | None
    end: str | None


@dataclass(frozen=True)
class InsiIdentity:
    """An INS with the traits INSi holds for it (the reference traits)."""

    ins: Ins
    birth_name: str
    given_names: tuple[str, ...]
    sex: str
    birth_date: RawBirthDate
    birthplace: str | None
    history: tuple[HistoricIns, ...] = ()
    first_name_sent: str | None = None  # the given name that gave CR 00 (traits search)

    def knows(self, ins: Ins) -> bool:
        """True when ``ins`` is the active matricule or one of its predecessors."""
        return ins.matricule == self.ins.matricule or any(
            h.ins.matricule == ins.matricule for h in self.history
        )

    def __repr__(self) -> str:
        return f"InsiIdentity(oid={self.ins.oid.label}, history={len(self.history)})"


@dataclass(frozen=True)
class VitaleQuery:
    """What a carte Vitale (or apCV) read gives for one beneficiary."""

    birth_name: str
    birth_date: RawBirthDate
    individual_nir: str | None = None
    insured_nir: str | None = None
    rank: int = 1

    def __repr__(self) -> str:
        return f"VitaleQuery(rank={self.rank})"


@dataclass
class _Call:
    action: str
    body: etree._Element
    author_rpps: str | None
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))


# --- the client -----------------------------------------------------------------------------


AssertionSigner = Callable[[etree._Element], etree._Element | None]
"""Returns the ``AssertionPS`` given, XML-DSig signed by the open CPS card's authentication key
(:func:`lgo.national.xmldsig.sign_enveloped`); ``None`` when no card key is at hand (e-CPS)."""


class InsiClient(ServiceClient):
    service = "insi"

    def __init__(
        self,
        http: NationalHttpClient,
        config: InsiConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        signer: AssertionSigner | None = None,
    ) -> None:
        super().__init__(http=http)
        self._config = config
        self._clock = clock
        self._signer = signer

    def search_by_traits(self, traits: Traits, *, author_rpps: str | None) -> InsiIdentity:
        """Search with each given name alone, then all of them; CR 00 wins, CR 02 stops."""
        for first_name in first_name_attempts(list(traits.given_names)):
            body = _recsansvitale(traits, first_name)
            try:
                found = self._send(_Call(ACTION_TRAITS, body, author_rpps))
            except InsiNotFound:
                continue
            return replace(found, first_name_sent=first_name)
        raise InsiNotFound()

    def search_by_vitale(self, query: VitaleQuery, *, author_rpps: str | None) -> InsiIdentity:
        return self._send(_Call(ACTION_VITALE, _recvitale(query), author_rpps))

    def _send(self, call: _Call) -> InsiIdentity:
        if self._config.auth == "cps" and not call.author_rpps:
            raise PharmacistSessionRequired("INSi en mode CPS : ouvrir une session CPS/e-CPS.")
        envelope = self._envelope(call)
        response = self._http.request(
            call.action.rsplit(":", 1)[-1],
            "POST",
            self._config.path,
            author_rpps=call.author_rpps,
            idempotent=True,  # a search changes nothing on the remote side
            content=envelope,
            headers={
                "Content-Type": f'application/soap+xml; charset=utf-8; action="{call.action}"'
            },
        )
        return _interpret(response, self._config.max_reply_bytes)

    def _envelope(self, call: _Call) -> bytes:
        now = self._clock().astimezone(UTC).isoformat(timespec="milliseconds")
        envelope = etree.Element(
            _q(SOAP, "Envelope"),
            nsmap={"soap": SOAP, "wsa": WSA, "ctxbam": CTXBAM, "ctxlps": CTXLPS},
        )
        header = etree.SubElement(envelope, _q(SOAP, "Header"))
        self._contexts(header, call.message_id, now)
        _sub(header, WSA, "Action", call.action)
        _sub(header, WSA, "MessageID", f"uuid:{call.message_id}")
        if self._config.auth == "cps" and call.author_rpps:
            _assertion(header, call, now, self._signer)
        etree.SubElement(envelope, _q(SOAP, "Body")).append(call.body)
        return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))

    def _contexts(self, header: etree._Element, message_id: str, now: str) -> None:
        bam = etree.SubElement(header, _q(CTXBAM, "ContexteBAM"), Version="01_02")
        _sub(bam, CTXBAM, "Id", message_id)
        _sub(bam, CTXBAM, "Temps", now)
        _sub(bam, CTXBAM, "Emetteur", self._config.emitter)
        etree.SubElement(bam, _q(CTXBAM, "COUVERTURE"))
        lps = etree.SubElement(header, _q(CTXLPS, "ContexteLPS"), Nature="CTXLPS", Version="01_00")
        _sub(lps, CTXLPS, "Id", message_id)
        _sub(lps, CTXLPS, "Temps", now)
        _sub(lps, CTXLPS, "Emetteur", self._config.emitter)
        software = etree.SubElement(lps, _q(CTXLPS, "LPS"))
        etree.SubElement(software, _q(CTXLPS, "IDAM"), R="4").text = self._config.idam
        _sub(software, CTXLPS, "Version", self._config.software_version)
        _sub(software, CTXLPS, "Instance", str(uuid.uuid5(uuid.NAMESPACE_URL, self._config.idam)))
        name = f"urn:lps:{self._config.software_name}:{self._config.software_version}"
        _sub(software, CTXLPS, "Nom", name)


def _q(namespace: str, tag: str) -> etree.QName:
    return etree.QName(namespace, tag)


def _sub(parent: etree._Element, namespace: str, tag: str, text: str | None) -> etree._Element:
    element = etree.SubElement(parent, _q(namespace, tag))
    element.text = text
    return element


def _assertion(
    header: etree._Element, call: _Call, now: str, signer: AssertionSigner | None
) -> None:
    """The professional's ``AssertionPS``, signed by the card (XML-DSig enveloped, reference to its
    ``Id``). It names the message it authenticates (``ps:MessageID``) so it cannot be replayed on
    another request."""
    security = etree.SubElement(header, _q(WSSE, "Security"), nsmap={"wsse": WSSE})
    assertion = etree.Element(
        _q(ASSERTION_PS, "AssertionPS"), nsmap={"ps": ASSERTION_PS}, Id=f"ps-{call.message_id}"
    )
    _sub(assertion, ASSERTION_PS, "IdNat", f"8{call.author_rpps}")
    _sub(assertion, ASSERTION_PS, "Emission", now)
    _sub(assertion, ASSERTION_PS, "MessageID", f"uuid:{call.message_id}")
    signed = signer(assertion) if signer is not None else None
    if signed is None:
        raise PharmacistSessionRequired(
            "INSi en mode CPS : la carte CPS doit être insérée et connectée (l'assertion est "
            "signée par la carte ; une session e-CPS ne suffit pas)."
        )
    security.append(signed)


def _recsansvitale(traits: Traits, first_name: str) -> etree._Element:
    body = etree.Element(_q(REC_SANS, "RECSANSVITALE"), nsmap={"insi_recsans_ins": REC_SANS})
    _sub(body, REC_SANS, "NomNaissance", traits.birth_name)
    _sub(body, REC_SANS, "Prenom", first_name)
    _sub(body, REC_SANS, "Sexe", traits.sex.value)
    _sub(body, REC_SANS, "DateNaissance", traits.birth_date.iso_like)
    if traits.birthplace:
        _sub(body, REC_SANS, "LieuNaissance", traits.birthplace)
    return body


def _matricule(parent: etree._Element, tag: str, nir: str) -> None:
    block = etree.SubElement(parent, _q(REC_VIT, tag))
    _sub(block, REC_VIT, "NumIdentifiant", nir[:13])
    _sub(block, REC_VIT, "Cle", nir[13:])
    _sub(block, REC_VIT, "TypeMatricule", "NIR")


def _recvitale(query: VitaleQuery) -> etree._Element:
    body = etree.Element(_q(REC_VIT, "RECVITALE"), nsmap={"insi_recvit_ins": REC_VIT})
    if query.individual_nir:
        _matricule(body, "MatriculeIndividu", check_nir(query.individual_nir))
    if query.insured_nir:
        _matricule(body, "MatriculeOD", check_nir(query.insured_nir))
    _sub(body, REC_VIT, "NomNaissance", normalise_name(query.birth_name))
    _sub(body, REC_VIT, "DateNaissance", query.birth_date.iso_like)
    _sub(body, REC_VIT, "RangNaissance", str(query.rank))
    return body


# --- reading the answer -----------------------------------------------------------------------


def _interpret(response: httpx.Response, max_bytes: int) -> InsiIdentity:
    content_type = response.headers.get("content-type", "")
    if "xml" not in content_type:
        if response.status_code >= 500:
            raise ServiceUnavailable(f"insi: HTTP {response.status_code}")
        raise InsiMalformedResponse(f"insi: HTTP {response.status_code}, not XML")
    try:
        root = parse_xml(response.content, max_bytes=max_bytes)
    except XmlRejectedError as exc:
        raise InsiMalformedResponse(
            f"insi: reply refused ({exc.reason})", reason=exc.reason
        ) from None
    body = root.find(f"{{{SOAP}}}Body")
    if root.tag != f"{{{SOAP}}}Envelope" or body is None:
        raise InsiMalformedResponse("insi: not a SOAP 1.2 envelope")
    fault = body.find(f"{{{SOAP}}}Fault")
    if fault is not None:
        raise _fault(fault)
    result = body.find(f"{{{RESULT}}}RESULTAT")
    if result is None:
        raise InsiMalformedResponse("insi: no RESULTAT")
    return _result(result)


def _fault(fault: etree._Element) -> InsiFault:
    ns = {"s": SOAP, "siram": SIRAM}
    subcode = fault.findtext("s:Code/s:Subcode/s:Value", default="", namespaces=ns).strip()
    siram = subcode.rsplit(":", 1)[-1] or "unknown"
    reason = fault.findtext("s:Reason/s:Text", default="", namespaces=ns).strip()
    error = fault.find("s:Detail/siram:Erreur", ns)
    desir = error.get("code") if error is not None else None
    return FAULT_TYPES.get(siram, InsiFault)(siram, desir, reason[:300])


def _result(result: etree._Element) -> InsiIdentity:
    ns = {"r": RESULT}
    code = result.findtext("r:CR/r:CodeCR", default="", namespaces=ns).strip()
    if code == "01":
        raise InsiNotFound()
    if code == "02":
        raise InsiSeveralFound()
    if code != "00":
        raise InsiMalformedResponse("insi: unknown CodeCR")
    individual = result.find("r:INDIVIDU", ns)
    if individual is None:
        raise InsiMalformedResponse("insi: CR 00 without INDIVIDU")
    try:
        return _identity(individual)
    except IdentityRuleError as exc:
        raise InsiMalformedResponse(
            f"insi: invalid identity in reply ({type(exc).__name__})"
        ) from None


def _ins(block: etree._Element | None) -> Ins:
    ns = {"r": RESULT}
    if block is None:
        raise InsiMalformedResponse("insi: INS missing")
    number = block.findtext("r:IdIndividu/r:NumIdentifiant", default="", namespaces=ns)
    key = block.findtext("r:IdIndividu/r:Cle", default="", namespaces=ns)
    oid = block.findtext("r:OID", default="", namespaces=ns)
    return Ins.of(number.strip() + key.strip(), oid)


def _identity(individual: etree._Element) -> InsiIdentity:
    ns = {"r": RESULT}
    tiq = individual.find("r:TIQ", ns)
    if tiq is None:
        raise InsiMalformedResponse("insi: CR 00 without TIQ")

    def trait(tag: str) -> str:
        return tiq.findtext(f"r:{tag}", default="", namespaces=ns).strip()

    names = trait("ListePrenom") or trait("Prenom")
    history = tuple(
        HistoricIns(
            _ins(h), h.findtext("r:DateDeb", namespaces=ns), h.findtext("r:DateFin", namespaces=ns)
        )
        for h in individual.findall("r:INSHISTO", ns)
    )
    return InsiIdentity(
        ins=_ins(individual.find("r:INSACTIF", ns)),
        birth_name=normalise_name(trait("NomNaissance")),
        given_names=tuple(normalise_name(n) for n in names.split()),
        sex=trait("Sexe"),
        birth_date=RawBirthDate.parse(trait("DateNaissance")),
        birthplace=trait("LieuNaissance") or None,
        history=history,
    )


# --- construction from settings ---------------------------------------------------------------


def build_insi_client(
    base_url: str,
    config: InsiConfig,
    *,
    timeout_s: float = 5.0,
    connect_timeout_s: float = 2.0,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    ca_file: Path | None = None,
    transport: httpx.BaseTransport | None = None,
    signer: AssertionSigner | None = None,
) -> InsiClient:
    """An INSi client; with ``client_cert`` the organisation certificate is presented (mTLS)."""
    if transport is None and (client_cert or ca_file):
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if client_cert:
            context.load_cert_chain(client_cert, client_key)
        transport = httpx.HTTPTransport(verify=context)
    http = NationalHttpClient(
        "insi",
        base_url,
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        max_body_bytes=config.max_reply_bytes,
        transport=transport,
    )
    return InsiClient(http, config, signer=signer)


__all__ = [
    "InsOid",
    "InsiAuthenticationFailed",
    "InsiClient",
    "InsiConfig",
    "InsiError",
    "InsiFault",
    "InsiIdentity",
    "InsiMalformedResponse",
    "InsiNotFound",
    "InsiSeveralFound",
    "InsiSoftwareNotAuthorised",
    "InsiUnavailable",
    "VitaleQuery",
    "build_insi_client",
]
