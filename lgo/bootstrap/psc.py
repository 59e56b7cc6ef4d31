"""Pro Santé Connect and the Annuaire Santé, built by the composition root (``lgo.bootstrap.container``).

``container.psc.login`` is the :class:`PscLogin` service (e-CPS sessions);
``container.psc.prescribers`` is the :class:`PrescriberChecker` the dispensing part calls for the
prescriber of every prescription; ``container.psc.annuaire`` its cache. Nothing here touches the
network at start: the provider's discovery document is fetched at the first sign-in.
"""

from __future__ import annotations

from datetime import timedelta

from lgo.core.settings import Settings
from lgo.national.annuaire import AnnuaireClient, CachedAnnuaire
from lgo.national.psc import PscClient
from lgo.national.transport import NationalHttpClient
from lgo.services.prescriber_check import PrescriberChecker
from lgo.services.psc_login import PscLogin
from lgo.services.sessions import SessionRegistry


class PscPart:
    def __init__(self, settings: Settings, sessions: SessionRegistry) -> None:
        national = settings.national
        root = national.base_url.rstrip("/")
        self._psc_http = _http("psc", national.psc.issuer_url or root + "/psc", settings)
        self._annuaire_http = _http(
            "annuaire", national.annuaire.url or root + "/annuaire", settings
        )
        client = PscClient(
            self._psc_http,
            client_id=national.psc.client_id,
            client_secret=national.psc.client_secret.get_secret_value(),
            scope=national.psc.scope,
            leeway_s=national.psc.leeway_s,
        )
        self.login = PscLogin(
            client,
            sessions,
            session_ttl=timedelta(minutes=national.psc.ecps_session_minutes),
            redirect_uri=national.psc.redirect_uri or f"http://127.0.0.1:{settings.api.port}/",
        )
        self.annuaire = CachedAnnuaire(
            AnnuaireClient(
                self._annuaire_http, api_key=national.annuaire.api_key.get_secret_value()
            ),
            ttl_s=national.annuaire.cache_ttl_s,
            negative_ttl_s=national.annuaire.negative_cache_ttl_s,
            max_entries=national.annuaire.cache_max_entries,
        )
        self.prescribers = PrescriberChecker(self.annuaire)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.close()  # waits for pending token revocations (each bounded by the HTTP timeout)

    def close(self) -> None:
        self.login.close()
        self._psc_http.close()
        self._annuaire_http.close()


def _http(service: str, base_url: str, settings: Settings) -> NationalHttpClient:
    return NationalHttpClient(
        service,
        base_url,
        timeout_s=settings.national.timeout_s,
        connect_timeout_s=settings.national.connect_timeout_s,
    )
