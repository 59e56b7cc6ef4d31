"""Pro Santé Connect and the Annuaire Santé, built by the composition root (``lgo.bootstrap.container``).

``container.psc.login`` is the :class:`PscLogin` service (e-CPS sessions);
``container.psc.prescribers`` is the :class:`PrescriberChecker` the dispensing part calls for the
prescriber of every prescription; ``container.psc.annuaire`` its cache. Nothing here touches the
network at start: the provider's discovery document is fetched at the first sign-in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from lgo.core.settings import Settings
from lgo.national.annuaire import AnnuaireClient, CachedAnnuaire, PractitionerDirectory
from lgo.national.psc import PscClient
from lgo.national.transport import NationalHttpClient
from lgo.services.prescriber_check import PrescriberChecker
from lgo.services.psc_login import PscLogin, PscProvider
from lgo.services.sessions import SessionRegistry


class PscPart:
    def __init__(
        self,
        settings: Settings,
        sessions: SessionRegistry,
        *,
        psc: PscProvider | None = None,
        annuaire: PractitionerDirectory | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        """``psc``, ``annuaire``: the national clients to use (fakes in a unit test; the Annuaire
        one still behind lgo's cache); built from the settings when None. ``today``: the date of
        the prescriber's status."""
        national = settings.national
        root = national.base_url.rstrip("/")
        self._owned: list[NationalHttpClient] = []  # closed at stop; handed-in clients are not
        if psc is None:
            psc_http = self._own(_http("psc", national.psc.issuer_url or root + "/psc", settings))
            psc = PscClient(
                psc_http,
                client_id=national.psc.client_id,
                client_secret=national.psc.client_secret.get_secret_value(),
                scope=national.psc.scope,
                leeway_s=national.psc.leeway_s,
            )
        if annuaire is None:
            url = national.annuaire.url or root + "/annuaire"
            annuaire = AnnuaireClient(
                self._own(_http("annuaire", url, settings)),
                api_key=national.annuaire.api_key.get_secret_value(),
            )
        self.login = PscLogin(
            psc,
            sessions,
            session_ttl=timedelta(minutes=national.psc.ecps_session_minutes),
            redirect_uri=national.psc.redirect_uri or f"http://127.0.0.1:{settings.api.port}/",
        )
        self.annuaire = CachedAnnuaire(
            annuaire,
            ttl_s=national.annuaire.cache_ttl_s,
            negative_ttl_s=national.annuaire.negative_cache_ttl_s,
            max_entries=national.annuaire.cache_max_entries,
        )
        self.prescribers = PrescriberChecker(self.annuaire, today)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.close()  # waits for pending token revocations (each bounded by the HTTP timeout)

    def close(self) -> None:
        self.login.close()
        for http in self._owned:
            http.close()

    def _own(self, http: NationalHttpClient) -> NationalHttpClient:
        self._owned.append(http)
        return http


def _http(service: str, base_url: str, settings: Settings) -> NationalHttpClient:
    return NationalHttpClient(
        service,
        base_url,
        timeout_s=settings.national.timeout_s,
        connect_timeout_s=settings.national.connect_timeout_s,
    )
