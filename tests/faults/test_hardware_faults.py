"""Failure modes of the card hardware, as scenarios against the whole daemon (API, EventBus,
hardware service) on hw-sim's private pcscd with virtual readers and cards, and OpenSC's PKCS#11
module driving the virtual CPS.

1. pcscd restarts → degraded, then recovered, and a Vitale card is read again without a restart.
2. reader unplugged and replugged, idle and during a read → the list converges, reads work again.
3. card pulled mid-read / swapped → no partial read kept; the old read id no longer resolves.
4. a Vitale read next to a logged-in CPS leaves the CPS session logged in (LEAVE_CARD).
5. a hung card read runs against its deadline off the event loop: the API keeps answering.
6. CPS pulled → session closed; reinserted → login works again; two logins at once → no 5xx.
7. PIN lockout: final try needs confirmation, a locked card is never tried; the problem says what
   to do.
8. the CPS reader unplugged under a logged-in card → session closed, login refused until replugged.
9. another process logs in and signs on the same card → both sign, the daemon keeps its session.
(A CPS pulled before or during a signature: tests/integration/drivers/test_cps_signed_assertions.py.)

The daemon fixture is the drivers part's (tests/integration/drivers/test_daemon_hardware.py):
waiting is on published events, never on sleeps.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest

from drivers.cps import card as cps_card
from drivers.pcsc import CardChannel
from hwsim.control import ControlError
from hwsim.fixtures.people import load_people
from tests.fixtures.opensc import forget_pulled_cards
from tests.integration.drivers.test_daemon_hardware import Daemon, daemon  # noqa: F401

pytestmark = pytest.mark.integration
PEOPLE = load_people()
PHARMACIST = PEOPLE.professionals["pharmacien"]
VITALE, CPS = 0, 1


def empty(d: Daemon, hwsim: Any) -> None:
    """Take the Vitale card out if the fault left one in, and wait until the daemon saw it go
    (a dropped link reports the removal itself)."""
    name = hwsim.reader_names[VITALE]
    with contextlib.suppress(ControlError):  # hw-sim refuses to empty an empty reader
        hwsim.client.remove(VITALE)
    if not any(t == "card.removed" and e["reader"] == name for t, e in d.seen):
        d.wait("card.removed", lambda e: e["reader"] == name, timeout=10.0)


def reader_names(d: Daemon) -> set[str]:
    return {r["name"] for r in d.client.get("/v1/readers").json()["readers"]}


def read_vitale(d: Daemon, hwsim: Any, profile: str = "seul") -> dict[str, Any]:
    reader = hwsim.reader_names[VITALE]
    hwsim.client.insert("vitale", profile, reader=VITALE)
    return d.wait("vitale.read", lambda e: e["reader"] == reader, timeout=10.0)


def login(d: Daemon, hwsim: Any, **extra: Any) -> Any:
    return d.client.post("/v1/cps/session", json={"kind": "cps", "pin": PHARMACIST.pin, **extra})


def insert_cps(d: Daemon, hwsim: Any) -> None:
    reader = hwsim.reader_names[CPS]
    hwsim.client.insert("cps", "pharmacien", reader=CPS)
    d.wait("card.inserted", lambda e: e["reader"] == reader and e["kind"] == "cps")


@pytest.mark.timeout(90)
def test_1_pcscd_restart_degrades_recovers_and_reads_again(daemon: Daemon, hwsim: Any) -> None:
    hwsim.client.restart_pcscd()
    assert daemon.wait("hardware.degraded", timeout=15.0)["reason"] == "pcsc_service_unavailable"
    daemon.wait("hardware.recovered", timeout=20.0)
    for name in hwsim.reader_names:
        daemon.wait("reader.added", lambda e, n=name: e["reader"] == n, timeout=20.0)
    read = read_vitale(daemon, hwsim)
    assert daemon.client.get(f"/v1/readers/vitale/{read['read_id']}").status_code == 200
    health = daemon.client.get("/v1/health").json()
    assert health["components"]["pcsc"]["ok"] is True


@pytest.mark.timeout(90)
def test_2_reader_unplug_replug_idle_and_during_a_read(daemon: Daemon, hwsim: Any) -> None:
    name = hwsim.reader_names[VITALE]
    hwsim.client.unplug(VITALE, hard=True)
    daemon.wait("reader.removed", lambda e: e["reader"] == name, timeout=15.0)
    assert name not in reader_names(daemon)
    hwsim.client.replug(VITALE)
    daemon.wait("reader.added", lambda e: e["reader"] == name, timeout=15.0)
    assert name in reader_names(daemon)
    # During a read: a slow card, and the reader's link drops under it.
    hwsim.client.set_fault(VITALE, delay_s=0.2)
    hwsim.client.insert("vitale", "seul", reader=VITALE)
    daemon.wait("card.inserted", lambda e: e["reader"] == name)
    hwsim.client.unplug(VITALE)
    error = daemon.wait("vitale.error", lambda e: e["reader"] == name, timeout=15.0)
    assert error["code"] == "card-removed", error  # the card went with the reader's link
    hwsim.client.replug(VITALE)
    hwsim.client.clear_faults(VITALE)
    empty(daemon, hwsim)
    read = read_vitale(daemon, hwsim)  # no stale handle: the next card reads
    assert read["beneficiaries"] == 1


@pytest.mark.timeout(60)
def test_3_card_pulled_mid_read_or_swapped_leaves_no_stale_read(daemon: Daemon, hwsim: Any) -> None:
    name = hwsim.reader_names[VITALE]
    hwsim.client.set_fault(VITALE, remove_after=3)  # pulled after 3 APDUs
    hwsim.client.insert("vitale", "seul", reader=VITALE)
    error = daemon.wait("vitale.error", lambda e: e["reader"] == name, timeout=10.0)
    assert error["code"] == "card-removed", error
    entry = next(r for r in daemon.client.get("/v1/readers").json()["readers"] if r["name"] == name)
    assert entry.get("vitale_read_id") is None  # nothing partial was kept
    hwsim.client.clear_faults(VITALE)
    empty(daemon, hwsim)
    first = read_vitale(daemon, hwsim, "seul")
    hwsim.client.swap("vitale", "jumeaux-2b", reader=VITALE)  # another card between read and act
    second = daemon.wait("vitale.read", lambda e: e["read_id"] != first["read_id"], timeout=10.0)
    assert second["beneficiaries"] == 3
    assert daemon.client.get(f"/v1/readers/vitale/{first['read_id']}").status_code == 404
    card = daemon.client.get(f"/v1/readers/vitale/{second['read_id']}").json()
    expected = [b.nir for b in PEOPLE.vitale["jumeaux-2b"].beneficiaries]
    assert [b["nir"] for b in card["beneficiaries"]] == expected


@pytest.mark.timeout(60)
def test_4_vitale_read_leaves_the_cps_session_logged_in(daemon: Daemon, hwsim: Any) -> None:
    insert_cps(daemon, hwsim)
    assert login(daemon, hwsim).status_code == 201
    with CardChannel(hwsim.reader_names[CPS]) as channel:
        assert cps_card.pin_verified(channel)  # precondition: the login verified the card
    read_vitale(daemon, hwsim, "jumeaux-2b")
    assert daemon.client.get("/v1/cps/session").json()["session"] is not None
    assert not any(t == "cps.logged_out" for t, _ in daemon.seen)
    with CardChannel(hwsim.reader_names[CPS]) as channel:  # never powered off or reset
        assert cps_card.pin_verified(channel)


@pytest.mark.timeout(60)
def test_5_hung_card_read_keeps_the_api_and_the_other_reader_working(
    daemon: Daemon, hwsim: Any
) -> None:
    name = hwsim.reader_names[VITALE]
    hwsim.client.set_fault(VITALE, mute_delay_s=30.0)  # SCardTransmit hangs 30 s
    hwsim.client.insert("mute", reader=VITALE)
    error = daemon.wait("vitale.error", lambda e: e["reader"] == name, timeout=15.0)
    assert error["code"] == "hardware-timeout"  # the read's deadline, not the card's 30 s
    # The native call is still stuck in its worker; the daemon is not.
    assert daemon.client.get("/v1/health").status_code == 200
    insert_cps(daemon, hwsim)
    card = daemon.client.get("/v1/cps/session/card").json()
    assert card["serial"] == PHARMACIST.card_serial
    assert not any(t == "card.removed" and e["reader"] == name for t, e in daemon.seen)


@pytest.mark.timeout(90)
def test_6_cps_pulled_then_reinserted_and_concurrent_logins(daemon: Daemon, hwsim: Any) -> None:
    insert_cps(daemon, hwsim)
    assert login(daemon, hwsim).status_code == 201
    hwsim.client.remove(CPS)
    assert daemon.wait("session.closed", timeout=5.0)["reason"] == "card_removed"
    insert_cps(daemon, hwsim)  # the token is re-discovered: stale handles are not reused
    again = login(daemon, hwsim)
    assert again.status_code == 201, again.text
    assert daemon.client.delete("/v1/cps/session").status_code == 204
    answers: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def one(i: int) -> None:
        barrier.wait()
        answers[i] = login(daemon, hwsim)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409]), [a.text for a in answers]
    assert daemon.client.get("/v1/cps/session").json()["session"] is not None
    assert daemon.client.get("/v1/cps/session/card").json()["pin_tries_left"] == 3


@pytest.mark.timeout(60)
def test_7_pin_lockout_is_never_tried_automatically(daemon: Daemon, hwsim: Any) -> None:
    insert_cps(daemon, hwsim)
    for left in (2, 1):
        wrong = daemon.client.post("/v1/cps/session", json={"kind": "cps", "pin": "0000"})
        assert wrong.json()["tries_left"] == left
    final = login(daemon, hwsim)
    assert final.status_code == 409
    assert final.json()["type"] == "urn:lgo:problem:cps-pin-final-try"
    assert daemon.client.get("/v1/cps/session/card").json()["pin_tries_left"] == 1  # not spent
    locked = daemon.client.post(
        "/v1/cps/session", json={"kind": "cps", "pin": "0000", "confirm_final_try": True}
    )
    assert locked.status_code == 403
    refused = login(daemon, hwsim, confirm_final_try=True)
    assert refused.json()["type"] == "urn:lgo:problem:cps-pin-locked", refused.text
    title = refused.json()["title"]  # what the counter page shows: what happened, what to do
    assert title.startswith("Carte CPS bloquée") and "code de déblocage" in title
    assert "e-CPS" in title
    assert daemon.client.get("/v1/cps/session/card").json()["pin_tries_left"] == 0
    assert daemon.client.get("/v1/cps/session").json()["session"] is None


@pytest.mark.timeout(60)
def test_4b_reader_held_exclusively_by_another_process(
    daemon: Daemon, hwsim: Any, opensc_module: Any
) -> None:
    """Another application holds the CPS reader exclusively: the login is refused with a typed
    problem, no PIN try is spent, and it works once the other application lets go."""
    from smartcard import scard

    # OpenSC (the daemon's module, in this process) still holds a handle on the previous test's
    # card until it looks again: let it go, so the other application gets there first.
    forget_pulled_cards(opensc_module)
    insert_cps(daemon, hwsim)
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hresult == scard.SCARD_S_SUCCESS
    hresult, handle, _ = scard.SCardConnect(
        context,
        hwsim.reader_names[CPS],
        scard.SCARD_SHARE_EXCLUSIVE,
        scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
    )
    assert hresult == scard.SCARD_S_SUCCESS
    try:
        refused = login(daemon, hwsim)
        assert 400 <= refused.status_code < 600 and refused.status_code != 500, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] != "urn:lgo:problem:internal-error"
        assert daemon.client.get("/v1/cps/session").json()["session"] is None
    finally:
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(context)
    assert daemon.client.get("/v1/cps/session/card").json()["pin_tries_left"] == 3
    assert login(daemon, hwsim).status_code == 201


@pytest.mark.timeout(90)
def test_8_cps_reader_unplugged_closes_the_session_until_replugged(
    daemon: Daemon, hwsim: Any
) -> None:
    name = hwsim.reader_names[CPS]
    insert_cps(daemon, hwsim)
    assert login(daemon, hwsim).status_code == 201
    hwsim.client.unplug(CPS, hard=True)  # the USB reader goes, with the card in it
    assert daemon.wait("session.closed", timeout=15.0)["reason"] == "card_removed"
    daemon.wait("reader.removed", lambda e: e["reader"] == name, timeout=15.0)
    refused = login(daemon, hwsim)
    assert refused.json()["type"] == "urn:lgo:problem:cps-card-missing", refused.text
    hwsim.client.replug(CPS)
    daemon.wait("reader.added", lambda e: e["reader"] == name, timeout=15.0)
    empty_cps = contextlib.suppress(ControlError)
    with empty_cps:
        hwsim.client.remove(CPS)
    insert_cps(daemon, hwsim)
    assert login(daemon, hwsim).status_code == 201


_OTHER_PROCESS = """
import sys, pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass
lib = pkcs11.lib(sys.argv[1])
token = next(s.get_token() for s in lib.get_slots(token_present=True)
             if sys.argv[2] in s.get_token().serial.decode())  # the CPS card (its serial)
with token.open(user_pin=sys.argv[3]) as session:
    keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + bytes(32)
    signature = keys[0].sign(digest_info, mechanism=Mechanism.RSA_PKCS)
print(len(signature))
"""


@pytest.mark.timeout(90)
def test_9_two_processes_using_the_card(daemon: Daemon, hwsim: Any, opensc_module: Any) -> None:
    """Another application logs in, signs and logs out on the same card while the daemon holds
    its session: both get a signature, and the daemon's session stays usable."""
    import subprocess
    import sys

    from lxml import etree

    from lgo.bootstrap.identity import cps_assertion_signer

    insert_cps(daemon, hwsim)
    assert login(daemon, hwsim).status_code == 201
    sign = cps_assertion_signer(daemon.container.hardware.cps.signer)
    assert sign(etree.Element("{urn:x}A", Id="a-1")) is not None
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            _OTHER_PROCESS,
            str(opensc_module),
            PHARMACIST.card_serial,
            PHARMACIST.pin,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert other.returncode == 0 and other.stdout.strip() == "256", other.stderr[-2000:]
    # The other application's C_Logout does not cost the daemon its session: it still signs.
    assert sign(etree.Element("{urn:x}A", Id="a-2")) is not None
    assert daemon.client.get("/v1/cps/session").json()["session"] is not None
    assert daemon.client.get("/v1/cps/session/card").json()["pin_tries_left"] == 3
