"""Daemon configuration: ``LGO_*`` environment variables over an optional TOML file.

Nested sections use a double underscore in the environment (``LGO_API__PORT=8700``) and tables in the
TOML file (``[api] port = 8700``). The file is ``--config PATH``, or ``LGO_CONFIG``, or none.
Validation happens once at start; its messages are meant for a technician.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from lgo.core.validation_fr import french_message

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True for a loopback name or address (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=1, le=65535)
    allow_non_loopback: bool = Field(
        False, description="Listen on a non-loopback address. Never needed on a counter PC."
    )
    unix_socket: Path | None = Field(None, description="Listen on this Unix socket instead of TCP.")
    extra_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names accepted besides loopback names (only with allow_non_loopback).",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body accepted (bytes); larger ones get a 413 before reading.",
    )

    @model_validator(mode="after")
    def _loopback_only(self) -> ApiSettings:
        if not is_loopback(self.host) and not self.allow_non_loopback:
            raise ValueError(
                f"api.host={self.host!r} n'est pas une adresse de boucle locale; lgo n'écoute que sur "
                "127.0.0.1/::1 (mettre api.allow_non_loopback=true pour forcer, déconseillé)"
            )
        if self.extra_allowed_hosts and not self.allow_non_loopback:
            raise ValueError("api.extra_allowed_hosts demande api.allow_non_loopback=true")
        return self


class DatabaseSettings(BaseModel):
    url: str | None = Field(
        None,
        description="SQLAlchemy URL. Empty: SQLite file lgo.sqlite3 in the state directory. "
        "PostgreSQL: postgresql://user@host/db (psycopg 3).",
    )
    busy_timeout_ms: int = Field(
        30_000, ge=0, description="SQLite: wait this long for the writer lock."
    )
    pool_size: int = Field(
        8,
        ge=1,
        le=64,
        description="PostgreSQL: connections this daemon keeps at most, opened on first need and "
        "then kept (no overflow: none opened or closed in a rush; a request beyond waits). 8 = the "
        "counter page's parallel requests (a browser opens 6 per host) + the outbox and document "
        "workers. The server needs max_connections >= counters x pool_size + 10.",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("database.url doit commencer par sqlite:// ou postgresql://")
        return value


class HardwareSettings(BaseModel):
    pcsc_enabled: bool = Field(True, description="Watch PC/SC readers (carte Vitale, CPS).")
    pkcs11_module: Path | None = Field(
        None,
        description="PKCS#11 module of the CPS middleware (Cryptolib CPS, or OpenSC's "
        "opensc-pkcs11.so, the bench default).",
    )
    scanner_serial_ports: list[str] = Field(default_factory=list)
    scanner_keyboard_devices: list[str] = Field(default_factory=list)
    scanner_keyboard_layout: Literal["fr", "us"] = Field(
        "fr", description="Keyboard layout the wedge scanners are configured for."
    )
    scanner_idle_timeout_s: float = Field(
        0.3, gt=0, le=5, description="A code without terminator ends after this silence."
    )
    eprescription_pattern: str = Field(
        r"^[A-Z0-9]{10,40}$", description="Regex of an e-prescription id (after normalisation)."
    )
    apcv_pattern: str = Field(
        r"^APCV[A-Za-z0-9._:-]{8,250}$", description="Regex of an apCV token."
    )
    card_read_timeout_s: float = Field(5.0, gt=0, le=60, description="Deadline of a Vitale read.")
    cps_login_timeout_s: float = Field(15.0, gt=0, le=120, description="Deadline of a CPS login.")
    cps_verify_on_card: bool = Field(
        False,
        description="Retired, ignored: the PIN reaches the CPS only through C_Login (the module "
        "sends the VERIFY). Still accepted so that a configuration file naming it keeps loading.",
    )
    cps_ca_file: Path | None = Field(
        None,
        description="PEM bundle of the CA certificates trusted for CPS cards (IGC-Santé root and "
        "issuing CAs). Needed to check a card's revocation at login.",
    )
    cps_revocation: Literal["soft-fail", "hard-fail", "off"] = Field(
        "soft-fail",
        description="When no usable CRL can be had at login: soft-fail lets the login through "
        "with a warning, hard-fail refuses it. A card on a valid CRL is always refused "
        "(docs/cps-revocation.md).",
    )
    cps_crl_grace_h: float = Field(
        72.0, ge=0, le=720, description="A cached CRL still serves this long after its nextUpdate."
    )
    cps_crl_max_kb: int = Field(16384, gt=0, description="Largest CRL accepted (kB).")


class PscSettings(BaseModel):
    """Pro Santé Connect (OpenID provider) as seen by the daemon, a confidential client."""

    issuer_url: str | None = Field(
        None, description="Issuer URL of the provider. Empty: national.base_url + '/psc'."
    )
    client_id: str = "lgo-officine"
    client_secret: SecretStr = Field(
        SecretStr("lgo-officine-sim-secret"), description="Client secret (simulator default)."
    )
    scope: str = "openid scope_all"
    redirect_uri: str | None = Field(
        None,
        description="Where the provider sends the browser back (?code=&state=) after sign-in. "
        "Empty: the counter page, http://127.0.0.1:<api.port>/.",
    )
    ecps_session_minutes: int = Field(
        30, ge=1, le=480, description="Life of an e-CPS session (a CPS session ends with the card)."
    )
    leeway_s: int = Field(30, ge=0, le=300, description="Clock skew tolerated on token times.")


class AnnuaireSettings(BaseModel):
    url: str | None = Field(
        None, description="Annuaire Santé root. Empty: national.base_url + '/annuaire'."
    )
    api_key: SecretStr = Field(
        SecretStr(""),
        description="The pharmacy's key to the Annuaire Santé FHIR API, sent as the ESANTE-API-KEY "
        "header (never logged). Empty: no header (the simulator without a key).",
    )
    cache_ttl_s: float = Field(86_400, ge=0, description="How long a found practitioner is kept.")
    negative_cache_ttl_s: float = Field(3_600, ge=0, description="How long 'unknown' is trusted.")
    cache_max_entries: int = Field(5_000, ge=1)


class InsiSettings(BaseModel):
    """INSi teleservice (INS of patients). Defaults work with the simulator."""

    url: str | None = Field(None, description="INSi endpoint. Empty: national.base_url + '/insi'.")
    idam: str = Field("LGO-SIM-0001", description="Software authorisation number (LPS IDAM).")
    auth: Literal["certificate", "cps"] = Field(
        "certificate",
        description="certificate: organisation certificate (mutual TLS); cps: CPS/e-CPS session.",
    )
    client_cert: Path | None = Field(None, description="PEM certificate INSI-AUTO or INSI-MANU.")
    client_key: Path | None = Field(None, description="PEM private key of client_cert.")
    ca_file: Path | None = Field(None, description="CA bundle to check the INSi server.")
    max_reply_kb: int = Field(256, ge=16, le=4096, description="Size cap of an INSi reply.")


class EPrescriptionSettings(BaseModel):
    """E-prescription service (FHIR R4). Defaults work with the simulator."""

    url: str | None = Field(
        None, description="FHIR base. Empty: national.base_url + '/eprescription/fhir'."
    )
    attempts: int = Field(3, ge=1, le=10, description="Attempts of an idempotent call.")
    deadline_s: float | None = Field(
        None, gt=0, le=600, description="Budget of one call, retries included. Empty: derived."
    )


class ApcvSettings(BaseModel):
    """apCV token exchange. The exchange is never retried once sent (single-use token)."""

    url: str | None = Field(None, description="apCV base. Empty: national.base_url + '/apcv'.")


class DmpSettings(BaseModel):
    """DMP / Mon espace santé (IHE XDS.b registry and repository)."""

    url: str | None = Field(None, description="DMP base. Empty: national.base_url + '/dmp'.")
    auto_feed: bool = Field(
        True,
        description="Produce and queue a dispensing summary for the DMP after each dispensation "
        "(qualified INS only; others are skipped with a 'document.skipped' event).",
    )
    auto_feed_lookback_days: int = Field(
        7,
        ge=1,
        le=90,
        description="Auto-feed sweep (at start and every 10 minutes): dispensations of the last N "
        "days without a dispensing summary get one (recovers a crash before the event handler).",
    )


class MssSettings(BaseModel):
    """MSSanté: SMTP with STARTTLS and the pharmacy's organisation certificate. Sending is
    refused until the certificate, its key and the operator's CA are configured."""

    host: str = "127.0.0.1"
    port: int = Field(2525, ge=1, le=65535)
    sender: str = Field("pharmacie@pharmacie.mssante.fr", description="The pharmacy's mailbox.")
    cert_file: Path | None = Field(None, description="Organisation certificate (PEM).")
    key_file: Path | None = Field(None, description="Its private key (PEM).")
    ca_file: Path | None = Field(None, description="CA of the operator's server certificate.")
    timeout_s: float = Field(10.0, gt=0, le=120)


class NationalSettings(BaseModel):
    base_url: str = Field(
        "http://127.0.0.1:8765",
        description="Root of the national services (the simulator on a bench).",
    )
    timeout_s: float = Field(5.0, gt=0, le=120)
    connect_timeout_s: float = Field(2.0, gt=0, le=60)
    psc: PscSettings = Field(default_factory=PscSettings)
    annuaire: AnnuaireSettings = Field(default_factory=AnnuaireSettings)
    insi: InsiSettings = Field(default_factory=InsiSettings)
    eprescription: EPrescriptionSettings = Field(default_factory=EPrescriptionSettings)
    apcv: ApcvSettings = Field(default_factory=ApcvSettings)
    dmp: DmpSettings = Field(default_factory=DmpSettings)
    mss: MssSettings = Field(default_factory=MssSettings)


class PharmacySettings(BaseModel):
    name: str = "Pharmacie de démonstration"
    address: str = "1 place de l'Exemple, 75000 Paris"
    finess: str = Field("750000000", pattern=r"^\d{9}$")


class DocumentsSettings(BaseModel):
    cisis_kit_dir: Path | None = Field(
        None,
        description="ANS CI-SIS conformance kit (TestContenuCDA: infrastructure/, schematrons/, "
        "jeuxDeValeurs/). Set: every CDA is checked against the normative schema and its volet "
        "schematron before sending. Empty: lgo's own schema subset only.",
    )
    cisis_cache_dir: Path | None = Field(
        None, description="Where the compiled schematrons go. Empty: state_dir/cisis-cache."
    )


class LoggingSettings(BaseModel):
    level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    json_output: bool = Field(True, alias="json")


def default_state_dir() -> Path:
    # systemd's StateDirectory= exports STATE_DIRECTORY; fall back to the XDG location.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    return Path(xdg) / "lgo" if xdg else Path.home() / ".local" / "state" / "lgo"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LGO_", env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    mode: Literal["production", "bench"] = Field(
        "production",
        description="production (default): lgo serve refuses the simulator's endpoints, secret and "
        "example identifiers; bench: a technician's or a developer's bench with hw-sim.",
    )
    state_dir: Path = Field(default_factory=default_state_dir)
    api: ApiSettings = Field(default_factory=ApiSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    hardware: HardwareSettings = Field(default_factory=HardwareSettings)
    national: NationalSettings = Field(default_factory=NationalSettings)
    pharmacy: PharmacySettings = Field(default_factory=PharmacySettings)
    documents: DocumentsSettings = Field(default_factory=DocumentsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    toml_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.state_dir / 'lgo.sqlite3'}"


class SettingsError(Exception):
    """The configuration is invalid; the message lists every problem in plain words."""


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(racine)"
        lines.append(f"  - {where}: {french_message(item)}")
    return "Configuration invalide :\n" + "\n".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the configuration; raise SettingsError with a readable message."""
    path = config_file or (Path(os.environ["LGO_CONFIG"]) if os.environ.get("LGO_CONFIG") else None)
    if path is not None and not path.is_file():
        raise SettingsError(f"Fichier de configuration introuvable : {path}")

    class _FileSettings(Settings):
        toml_file = path

    try:
        loaded = _FileSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except ValueError as exc:  # malformed TOML
        raise SettingsError(f"Fichier de configuration illisible ({path}) : {exc}") from None
    return Settings.model_validate(loaded.model_dump(by_alias=True))
