"""INSi client without network (httpx.MockTransport): what goes on the wire, how replies are read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from cryptography import x509
from lxml import etree
from signxml.verifier import XMLVerifier

from lgo.core.errors import PharmacistSessionRequired
from lgo.domain.identity import InsOid, Traits, with_key
from lgo.national.errors import MalformedResponse
from lgo.national.insi import (
    ACTION_TRAITS,
    ASSERTION_PS,
    InsiClient,
    InsiConfig,
    InsiFault,
    InsiSoftwareNotAuthorised,
)
from lgo.national.transport import NationalHttpClient, RetryPolicy
from lgo.national.xmldsig import DSIG, sign_enveloped
from tests.fixtures.signing import SoftwareCard

SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS = {
    "s": SOAP,
    "wsa": "http://www.w3.org/2005/08/addressing",
    "bam": "urn:siram:bam:ctxbam",
    "lps": "urn:siram:lps:ctxlps",
    "rs": "http://www.cnamts.fr/INSiRecSans",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
}
NIR = with_key("1870175056456")
FOUND = f"""<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="{SOAP}"><S:Body xmlns:S="{SOAP}">
<RESULTAT xmlns="http://www.cnamts.fr/INSiResultat"><CR><CodeCR>00</CodeCR><LibelleCR>OK</LibelleCR></CR>
<INDIVIDU><INSACTIF><IdIndividu><NumIdentifiant>{NIR[:13]}</NumIdentifiant><Cle>{NIR[13:]}</Cle>
</IdIndividu><OID>1.2.250.1.213.1.4.10</OID><!-- test OID --></INSACTIF>
<TIQ><NomNaissance>D'ARTESTE</NomNaissance><ListePrenom>JEAN-LUC COEUR</ListePrenom><Sexe>M</Sexe>
<DateNaissance>1987-01-25</DateNaissance><LieuNaissance>75056</LieuNaissance></TIQ></INDIVIDU>
</RESULTAT></S:Body></soap:Envelope>""".encode()

FAULT_100 = f"""<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="{SOAP}"><soap:Body><soap:Fault>
<soap:Code><soap:Value>soap:Sender</soap:Value><soap:Subcode><soap:Value>soap:siram_100</soap:Value>
</soap:Subcode></soap:Code><soap:Reason><soap:Text xml:lang="fr">Accès non autorisé.</soap:Text>
</soap:Reason><soap:Detail><siram:Erreur xmlns:siram="urn:siram" code="desir_550" severite="erreur">
Numéro d'autorisation du logiciel inconnu.</siram:Erreur></soap:Detail></soap:Fault></soap:Body>
</soap:Envelope>""".encode()

TRAITS = Traits.of("d’Arteste", "Jean-Luc Cœur", "M", "19870125")


def _client(
    handler: Callable[[httpx.Request], httpx.Response], signer: Any = None, **config: object
) -> InsiClient:
    http = NationalHttpClient(
        "insi",
        "http://insi.test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=1),
        sleep=lambda _: None,
    )
    settings = InsiConfig(idam="IDAM-X", **config)  # type: ignore[arg-type]
    return InsiClient(
        http, settings, clock=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), signer=signer
    )


def _reply(
    body: bytes, status: int = 200, content_type: str = "application/soap+xml"
) -> Callable[[httpx.Request], httpx.Response]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    handler.sent = sent  # type: ignore[attr-defined]
    return handler


def test_envelope_headers_and_body() -> None:
    handler = _reply(FOUND)
    with _client(handler) as client:
        found = client.search_by_traits(TRAITS, author_rpps="10999999998")
    [request] = handler.sent  # type: ignore[attr-defined]
    assert request.url.path == "/lps"
    assert f'action="{ACTION_TRAITS}"' in request.headers["content-type"]
    root = etree.fromstring(request.content)
    assert root.findtext("s:Header/wsa:Action", namespaces=NS) == ACTION_TRAITS
    assert root.findtext("s:Header/wsa:MessageID", namespaces=NS).startswith("uuid:")
    bam = root.find("s:Header/bam:ContexteBAM", NS)
    assert bam is not None and bam.get("Version") == "01_02"
    assert bam.findtext("bam:Temps", namespaces=NS) == "2026-01-02T03:04:05.000+00:00"
    idam = root.find("s:Header/lps:ContexteLPS/lps:LPS/lps:IDAM", NS)
    assert idam is not None and idam.text == "IDAM-X" and idam.get("R") == "4"
    assert root.find("s:Header/wsse:Security", NS) is None  # certificate mode: no assertion
    body = root.find("s:Body/rs:RECSANSVITALE", NS)
    assert body is not None
    assert [(etree.QName(e).localname, e.text) for e in body] == [
        ("NomNaissance", "D'ARTESTE"),
        ("Prenom", "JEAN-LUC"),
        ("Sexe", "M"),
        ("DateNaissance", "1987-01-25"),
    ]
    assert found.ins.matricule == NIR and found.ins.oid is InsOid.TEST
    assert found.given_names == ("JEAN-LUC", "COEUR")


def test_cps_mode_adds_the_professional_assertion() -> None:
    handler = _reply(FOUND)
    card = SoftwareCard()
    with _client(handler, auth="cps", signer=partial(sign_enveloped, card=card)) as client:
        client.search_by_traits(TRAITS, author_rpps=card.rpps)
    root = etree.fromstring(handler.sent[0].content)  # type: ignore[attr-defined]
    security = root.find("s:Header/wsse:Security", NS)
    assert security is not None
    assert f">8{card.rpps}<" in etree.tostring(security).decode()


def test_fault_detail_is_kept() -> None:
    with (
        _client(_reply(FAULT_100, status=400)) as client,
        pytest.raises(InsiSoftwareNotAuthorised) as info,
    ):
        client.search_by_traits(TRAITS, author_rpps=None)
    assert isinstance(info.value, InsiFault)
    assert (info.value.siram, info.value.desir) == ("siram_100", "desir_550")


@pytest.mark.parametrize(
    "reply",
    [
        FOUND.replace(b"<Cle>" + NIR[13:].encode(), b"<Cle>00"),  # wrong key from the service
        FOUND.replace(b"<CodeCR>00", b"<CodeCR>07"),  # unknown result code
        FOUND.replace(b"S:Body", b"S:Corps"),  # not SOAP
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
    ],
    ids=["bad-key", "unknown-cr", "no-body", "dtd"],
)
def test_untrustworthy_replies_are_malformed(reply: bytes) -> None:
    with _client(_reply(reply)) as client, pytest.raises(MalformedResponse):
        client.search_by_traits(TRAITS, author_rpps=None)


def test_html_error_page_is_not_parsed() -> None:
    handler = _reply(b"<html>oops</html>", status=404, content_type="text/html")
    with _client(handler) as client, pytest.raises(MalformedResponse):
        client.search_by_traits(TRAITS, author_rpps=None)


def test_cps_assertion_is_an_xml_dsig_by_the_card_for_this_message() -> None:
    card = SoftwareCard()
    handler = _reply(FOUND)
    with _client(handler, auth="cps", signer=partial(sign_enveloped, card=card)) as client:
        client.search_by_traits(TRAITS, author_rpps=card.rpps)
    root = etree.fromstring(handler.sent[0].content)  # type: ignore[attr-defined]
    assertion = root.find("s:Header/wsse:Security/ps:AssertionPS", {**NS, "ps": ASSERTION_PS})
    assert assertion is not None
    message_id = root.findtext("s:Header/wsa:MessageID", namespaces=NS)
    assert assertion.findtext(f"{{{ASSERTION_PS}}}MessageID") == message_id
    signature = assertion.find(f"{{{DSIG}}}Signature")
    assert signature is not None and assertion[-1] is signature  # enveloped, last child
    reference = signature.find(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}Reference")
    assert reference is not None and reference.get("URI") == "#" + assertion.get("Id", "")
    # What travelled verifies against the card's certificate (what the card was given: SignedInfo).
    certificate = x509.load_der_x509_certificate(card.authentication_certificate())
    result = XMLVerifier().verify(etree.tostring(assertion), x509_cert=certificate)
    assert not isinstance(result, list)
    assert result.signed_xml is not None
    assert result.signed_xml.findtext(f"{{{ASSERTION_PS}}}IdNat") == "8" + card.rpps
    assert len(card.signed) == 1 and card.signed[0].startswith(b"<ds:SignedInfo")


def test_no_card_key_means_nothing_is_sent() -> None:
    handler = _reply(FOUND)
    client = _client(handler, auth="cps", signer=lambda _: None)
    with client, pytest.raises(PharmacistSessionRequired):
        client.search_by_traits(TRAITS, author_rpps="10999999998")
    assert handler.sent == []  # type: ignore[attr-defined]
