"""The hardware rows of the benchmark (tests/bench/run.py): Vitale read and CPS login + sign, each
next to a floor doing the same work with pyscard / python-pkcs11 directly, in the same run.

APDU counts are taken on the card side (hw-sim's vpcd link counter), so a driver that sends more
APDUs than its floor shows it whatever it counts itself. Nothing here passes or fails on time.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from tests.bench.measures import Figure, pct

# What the driver sends to a Vitale 2 (drivers/vitale/reader.py): SELECT with P2=0C (no FCI),
# READ BINARY by SFI with Le=00 (the T=0 card answers 6C xx: resent with the exact length).
VITALE_SEQUENCE = (
    bytes.fromhex("00A4000C023F00"),
    bytes.fromhex("00B0820000"),
    bytes.fromhex("00B0830000"),
    bytes.fromhex("00A4040C0BD250000002564954414C45"),
    bytes.fromhex("00B0820000"),
)
# The CPS's PC/SC side the login reads before C_Login (drivers/cps/card.py): EF.SN.ICC (serial,
# pairs the card with its token) and the PIN try counter.
CPS_CARD_SEQUENCE = (
    bytes.fromhex("00A40904043F00D003"),
    bytes.fromhex("00B000000C"),
    bytes.fromhex("00A4090C023F00"),
    bytes.fromhex("00CB3FFF0A4D087006BF810102A080"),
)
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
SIGNED = b"ordonnancier entry to sign"


def _interleaved(
    ours: Callable[[], object], floor: Callable[[], object], n: int
) -> tuple[list[float], list[float]]:
    """``n`` rounds of ours and floor, alternated and each round in the other order than the last,
    so a noisy neighbour and any warm-up effect hit both alike (ms)."""
    mine: list[float] = []
    raw: list[float] = []
    pairs = ((ours, mine), (floor, raw))
    for i in range(n):
        for call, out in pairs if i % 2 == 0 else pairs[::-1]:
            start = time.perf_counter()
            call()
            out.append((time.perf_counter() - start) * 1000)
    return mine, raw


def _raw_exchange(scard: Any, handle: Any, protocol: int, apdu: bytes) -> int:
    """One command, T=0 resolved as any PC/SC program must (6C xx resend, 61 xx GET RESPONSE);
    returns the final status word."""
    hresult, response = scard.SCardTransmit(handle, protocol, list(apdu))
    if hresult != 0 or len(response) < 2:
        raise RuntimeError(f"raw SCardTransmit failed: {hresult:#x}")
    sw1, sw2 = response[-2], response[-1]
    if sw1 == 0x6C:
        return _raw_exchange(scard, handle, protocol, apdu[:4] + bytes([sw2]))
    if sw1 == 0x61:
        return _raw_exchange(scard, handle, protocol, bytes([0x00, 0xC0, 0x00, 0x00, sw2]))
    return int((sw1 << 8) | sw2)


def raw_pcsc_session(reader: str, apdus: tuple[bytes, ...]) -> None:
    """The floor of a card read with pyscard alone: establish a context, connect (shared), begin a
    transaction, the APDUs, end the transaction and disconnect leaving the card powered, release."""
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != 0:
        raise RuntimeError("SCardEstablishContext failed")
    try:
        hresult, handle, protocol = scard.SCardConnect(
            context,
            reader,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if hresult != 0:
            raise RuntimeError("SCardConnect failed")
        scard.SCardBeginTransaction(handle)
        for apdu in apdus:
            _raw_exchange(scard, handle, protocol, apdu)
        scard.SCardEndTransaction(handle, scard.SCARD_LEAVE_CARD)
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
    finally:
        scard.SCardReleaseContext(context)


def _apdus_of(client: Any, index: int, call: Callable[[], object]) -> int:
    """APDUs ``call`` sends to the card in reader ``index``, counted by hw-sim (card side)."""
    before = client.apdus(index)
    call()
    return int(client.apdus(index) - before)


def vitale_read(client: Any, reader: str, reads: int, index: int = 0) -> list[Figure]:
    """Our read (context, connect, ATR, transaction, APDUs, LEAVE_CARD) against the same file reads
    with pyscard alone, same card, alternated in the same run."""
    from drivers.vitale import read_vitale_from_reader
    from tests.fixtures.pcsc import wait_card

    client.insert("vitale", "famille-testnom", reader=index)
    wait_card(reader, present=True)
    try:
        ours_apdus = _apdus_of(client, index, lambda: read_vitale_from_reader(reader))
        raw_apdus = _apdus_of(client, index, lambda: raw_pcsc_session(reader, VITALE_SEQUENCE))
        # A read is ~2 ms against a noise of the same order on a shared machine: 4 × reads pairs.
        ours, raw = _interleaved(
            lambda: read_vitale_from_reader(reader),
            lambda: raw_pcsc_session(reader, VITALE_SEQUENCE),
            reads * 4,
        )
    finally:
        client.remove(index)
        wait_card(reader, present=False)
    return [
        Figure(
            "Vitale read (context, connect, transaction, APDUs, LEAVE_CARD)",
            statistics.median(ours),
            "ms",
            f"pyscard: context, connect, transaction, the same {raw_apdus} APDUs, "
            "end, disconnect, release",
            statistics.median(raw),
            f"p99 {pct(ours, 0.99):.2f} ms (floor p99 {pct(raw, 0.99):.2f}), n={len(ours)}, "
            f"{ours_apdus} APDUs to the card (floor {raw_apdus})",
            {"apdus": float(ours_apdus), "raw_apdus": float(raw_apdus)},
        )
    ]


class _RawPkcs11:
    """The floor of a CPS login + sign with python-pkcs11 alone on the same module: slot list,
    token info, C_OpenSession + C_Login, the signature key by label, C_Sign (RSA PKCS#1 v1.5 on a
    SHA-256 DigestInfo, the mechanism that works through OpenSC), C_Logout + C_CloseSession."""

    def __init__(self, module: str, pin: str) -> None:
        import pkcs11

        self.lib = pkcs11.lib(module)
        self.pin = pin

    def token(self) -> Any:
        return self.lib.get_slots(token_present=True)[0].get_token()

    def session(self) -> Any:
        return self.token().open(user_pin=self.pin)

    @staticmethod
    def certificate(token: Any) -> bytes:
        """The authentication certificate, read in a session without login."""
        from pkcs11 import Attribute, ObjectClass

        label = "Certificat d'Authentification CPS"
        with token.open() as public:
            (cert,) = public.get_objects(
                {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}
            )
            return bytes(cert[Attribute.VALUE])

    @staticmethod
    def key(session: Any) -> Any:
        from pkcs11 import Attribute, ObjectClass

        template = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: "CPS_PRIV_SIG"}
        (key,) = session.get_objects(template)  # the whole search, up to C_FindObjectsFinal
        return key

    @staticmethod
    def sign(key: Any) -> bytes:
        from pkcs11 import Mechanism

        digest = SHA256_DIGEST_INFO + hashlib.sha256(SIGNED).digest()
        return bytes(key.sign(digest, mechanism=Mechanism.RSA_PKCS))

    def login_sign(self, reader: str, check_certificate: bool = False) -> None:
        raw_pcsc_session(reader, CPS_CARD_SEQUENCE)  # the card's own APDUs, as the login reads
        token = self.token()
        if check_certificate:
            self.certificate(token)
        session = token.open(user_pin=self.pin)
        try:
            self.sign(self.key(session))
        finally:
            session.close()


def cps_login_sign(
    client: Any, reader: str, module: str, rounds: int, index: int = 1
) -> list[Figure]:
    """Our login + sign (card serial and PIN counter over PC/SC, token by serial, C_Login, identity
    from the authentication certificate, C_Sign, logout) against the same PC/SC reads and a raw
    python-pkcs11 session on the same OpenSC module, same card, alternated in the same run."""
    from drivers.cps import CpsTokens
    from drivers.cps.login import login
    from hwsim.fixtures.people import load_people
    from tests.fixtures.pcsc import wait_card

    pro = load_people().professionals["pharmacien"]
    client.insert("cps", "pharmacien", reader=index)
    wait_card(reader, present=True)
    try:
        tokens = CpsTokens(module)
        raw = _RawPkcs11(module, pro.pin)

        def ours() -> None:
            session = login(tokens, reader, pro.pin)
            try:
                session.sign(SIGNED)
            finally:
                session.close()

        ours()  # warm: OpenSC binds the PKCS#15 application once per card
        raw.login_sign(reader)
        ours_apdus = _apdus_of(client, index, ours)
        raw_apdus = _apdus_of(client, index, lambda: raw.login_sign(reader))
        # ~20-40 ms a round, most of it OpenSC's slot listing, whose time swings with the load on
        # a shared machine: five times the runner's rounds, alternated.
        mine, floor = _interleaved(ours, lambda: raw.login_sign(reader), rounds * 5)
        signs, raw_signs, sign_apdus, raw_sign_apdus = _signs_on_open_sessions(
            client, index, tokens, raw, reader, pro.pin, rounds * 4
        )
        checked = _checked_login_sign(client, index, tokens, raw, reader, pro.pin, rounds)
    finally:
        client.remove(index)
    return [
        Figure(
            "CPS login + sign through OpenSC (card counter, C_Login, identity, C_Sign, logout)",
            statistics.median(mine),
            "ms",
            f"pyscard serial + PIN counter, then python-pkcs11 slot, token, C_Login, C_Sign, "
            f"C_Logout on the same module ({raw_apdus} APDUs)",
            statistics.median(floor),
            f"p99 {pct(mine, 0.99):.2f} ms (floor p99 {pct(floor, 0.99):.2f}), n={len(mine)}, "
            f"{ours_apdus} APDUs to the card (floor {raw_apdus})",
            {"apdus": float(ours_apdus), "raw_apdus": float(raw_apdus)},
        ),
        Figure(
            "CPS sign on an open session through OpenSC (lock, C_Sign)",
            statistics.median(signs),
            "ms",
            f"python-pkcs11 C_Sign on an open session, same module ({raw_sign_apdus} APDUs)",
            statistics.median(raw_signs),
            f"n={len(signs)}, {sign_apdus} APDUs to the card (floor {raw_sign_apdus})",
            {"apdus": float(sign_apdus), "raw_apdus": float(raw_sign_apdus)},
        ),
        checked,
    ]


def _checked_login_sign(
    client: Any, index: int, tokens: Any, raw: _RawPkcs11, reader: str, pin: str, rounds: int
) -> Figure:
    """The daemon's login when a revocation check reads the authentication certificate before the
    PIN (``read_for_check`` then ``login(checked=…)``, as lgo.services.cps does): ours re-reads the
    card's serial and counter after the check (the card must still be the one checked); the floor
    reads the certificate in a public session."""
    from drivers.cps.login import login, read_for_check

    def ours() -> None:
        session = login(tokens, reader, pin, checked=read_for_check(tokens, reader))
        try:
            session.sign(SIGNED)
        finally:
            session.close()

    def floor() -> None:
        raw.login_sign(reader, check_certificate=True)

    ours_apdus = _apdus_of(client, index, ours)
    raw_apdus = _apdus_of(client, index, floor)
    mine, base = _interleaved(ours, floor, rounds * 2)
    return Figure(
        "CPS login with the certificate read for a revocation check before the PIN, + sign",
        statistics.median(mine),
        "ms",
        f"the raw login + sign above with the certificate read in a public session first "
        f"({raw_apdus} APDUs)",
        statistics.median(base),
        f"p99 {pct(mine, 0.99):.2f} ms (floor p99 {pct(base, 0.99):.2f}), n={len(mine)}, "
        f"{ours_apdus} APDUs to the card (floor {raw_apdus})",
        {"apdus": float(ours_apdus), "raw_apdus": float(raw_apdus)},
    )


def _signs_on_open_sessions(
    client: Any, index: int, tokens: Any, raw: _RawPkcs11, reader: str, pin: str, n: int
) -> tuple[list[float], list[float], int, int]:
    """C_Sign alone, alternated: ours on a logged-in CpsSession, the floor on a raw session of the
    same token (the login is the token's, so the raw session signs without a C_Login of its own)."""
    from drivers.cps.login import login

    session = login(tokens, reader, pin)
    try:
        session.sign(SIGNED)  # key handle and mechanisms looked up once per session
        with raw.token().open() as raw_session:
            key = raw.key(raw_session)  # looked up once, as ours does per session
            sign_apdus = _apdus_of(client, index, lambda: session.sign(SIGNED))
            raw_sign_apdus = _apdus_of(client, index, lambda: raw.sign(key))
            signs, raw_signs = _interleaved(lambda: session.sign(SIGNED), lambda: raw.sign(key), n)
    finally:
        session.close()
    return signs, raw_signs, sign_apdus, raw_sign_apdus
