"""The test PKI's publication point: CRLs and CA certificates, as IGC-Santé publishes them over HTTP.

Mounted under ``/pki`` (the URLs the certificates of :mod:`hwsim.pki` carry in their CRL
distribution point and AIA ``caIssuers``):

- ``GET /pki/ac-personnes-test.crl`` / ``ac-racine-test.crl``: DER CRL (``application/pkix-crl``)
  of the issuing CA (every professional with ``carte_revoquee = true`` in ``people.toml``, plus the
  serials revoked through the control below) / of the root (empty);
- ``GET /pki/ac-personnes-test.cer`` / ``ac-racine-test.cer``: DER certificate
  (``application/pkix-cert``), the CA's carrying this simulator's own URLs.

A CRL is built on each request from the simulator clock: ``thisUpdate`` = now,
``nextUpdate`` = now + ``crl_validity_h`` (setting, default 24 h), so a test ages a cached CRL by
moving the clock. Transport faults (outage, latency…) come from the generic fault board (service
``pki``). Control: ``POST /_sim/pki/revoke`` ``{"serials": [...]}`` or ``{"profile": "pharmacien"}``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from hwsim.fixtures.people import load_people
from hwsim.national.context import ServiceMount, SimDep, SimState
from hwsim.pki import CA_FILE, ROOT_FILE, Authority, TestPki, cert_serial, revoked_serials

SERVICE: Final = "pki"
DEFAULT_VALIDITY_H: Final = 24.0
AUTHORITIES: Final[dict[str, Authority]] = {ROOT_FILE: "root", CA_FILE: "ca"}


@dataclass
class PkiState:
    revoked: set[int]
    pkis: dict[str, TestPki] = field(default_factory=dict)  # by base URL
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pki(self, base_url: str) -> TestPki:
        """The test PKI whose certificates point here (RSA keys load once, from the cache)."""
        with self.lock:
            found = self.pkis.get(base_url)
            if found is None:
                found = self.pkis[base_url] = TestPki(base_url=base_url)
            return found


def setup(sim: SimState) -> None:
    previous = sim.stores.get(SERVICE)
    pkis = previous.pkis if isinstance(previous, PkiState) else {}
    sim.stores[SERVICE] = PkiState(set(revoked_serials(load_people().professionals.values())), pkis)


def _store(sim: SimState) -> PkiState:
    store: PkiState = sim.stores[SERVICE]
    return store


def _authority(name: str, suffix: str) -> Authority:
    stem, dot, ext = name.rpartition(".")
    if not dot or ext != suffix or stem not in AUTHORITIES:
        raise HTTPException(404, "unknown publication")
    return AUTHORITIES[stem]


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


router = APIRouter(tags=["pki"])


@router.get("/{name}.crl")
def crl(name: str, request: Request, sim: SimDep) -> Response:
    """The CA's current CRL (DER)."""
    which = _authority(f"{name}.crl", "crl")
    store = _store(sim)
    now = sim.clock.now()
    validity = timedelta(hours=float(sim.settings.get("crl_validity_h", DEFAULT_VALIDITY_H)))
    with store.lock:
        revoked = set(store.revoked) if which == "ca" else set()
    built = store.pki(_base_url(request)).crl(which, revoked, now, now + validity)
    return Response(
        built.public_bytes(serialization.Encoding.DER), media_type="application/pkix-crl"
    )


@router.get("/{name}.cer")
def certificate(name: str, request: Request, sim: SimDep) -> Response:
    """The CA certificate (DER), for AIA chain building."""
    which = _authority(f"{name}.cer", "cer")
    issued = _store(sim).pki(_base_url(request)).authority(which)
    return Response(issued.cert_der, media_type="application/pkix-cert")


class Revocation(BaseModel):
    serials: list[int] = Field(default_factory=list)
    profile: str | None = None


control = APIRouter(tags=["pki-sim"])


@control.post("/revoke")
def revoke(order: Revocation, sim: SimDep) -> dict[str, int]:
    """Put more certificates on the CA's CRL (until the next reset)."""
    serials = set(order.serials)
    if order.profile is not None:
        pro = load_people().professionals.get(order.profile)
        if pro is None:
            raise HTTPException(404, f"professionnel inconnu : {order.profile}")
        serials |= {cert_serial(pro, False), cert_serial(pro, True)}
    store = _store(sim)
    with store.lock:
        store.revoked |= serials
        return {"revoked": len(store.revoked)}


mount = ServiceMount(name=SERVICE, prefix="/pki", router=router, setup=setup, control=control)
