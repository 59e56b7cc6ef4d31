"""The daemon side of the hardware: reader monitor, Vitale reads on insertion, scanners.

Driver events become bus events (ids and states only, never card contents):
``reader.added`` / ``reader.removed`` {reader}; ``card.inserted`` {reader, kind, atr};
``card.removed`` {reader, kind}; ``hardware.degraded`` {reason}; ``hardware.recovered``;
``vitale.read`` {reader, read_id, beneficiaries, apdu_count} or ``vitale.error`` {reader, code};
``scan.received`` (see :mod:`lgo.services.scans`).

A Vitale 2 is read as soon as it is inserted, on a worker thread (never on the monitor thread or
the event loop). The read is kept in memory under ``read_id`` while the card stays in its reader
and forgotten when it is removed.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from drivers import errors as drv
from drivers.errors import ScannerError
from drivers.pcsc import (
    CardInserted,
    CardKind,
    CardRemoved,
    MonitorDegraded,
    MonitorEvent,
    MonitorRecovered,
    ReaderAdded,
    ReaderMonitor,
    ReaderRemoved,
)
from drivers.scanners import SerialScanner, WedgeScanner
from drivers.vitale import VitaleCard, read_vitale_from_reader
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.core.settings import HardwareSettings
from lgo.services import hardware_errors as hw
from lgo.services.cps import CpsService
from lgo.services.scans import ScanService

log = get_logger(__name__)


@dataclass(frozen=True)
class VitaleRead:
    read_id: str
    reader: str
    card: VitaleCard


class HardwareService:
    def __init__(
        self,
        settings: HardwareSettings,
        events: EventBus,
        scans: ScanService,
        cps: CpsService,
    ) -> None:
        self._settings = settings
        self._events = events
        self._scans = scans
        self._cps = cps
        self._lock = threading.Lock()
        self._reads: dict[str, VitaleRead] = {}  # reader → last read of the card in it
        self._kinds: dict[str, CardKind] = {}
        # Coordinators wait on the reads with a deadline; the reads themselves run in their own
        # pool so a hung SCardTransmit costs one reader thread, never the coordinator.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="card-read")
        self._readers_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="card-io")
        self._monitor: ReaderMonitor | None = None
        self._scanners: list[SerialScanner | WedgeScanner] = []

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._settings.pcsc_enabled:
            self._monitor = ReaderMonitor(self.on_monitor_event)
            self._monitor.start()
        for port in self._settings.scanner_serial_ports:
            self._add_scanner(
                SerialScanner(
                    port,
                    self._payload(f"serial:{port}"),
                    self._scanner_error,
                    idle_timeout=self._settings.scanner_idle_timeout_s,
                )
            )
        for device in self._settings.scanner_keyboard_devices:
            self._add_scanner(
                WedgeScanner(
                    device,
                    self._payload(f"wedge:{device}"),
                    self._scanner_error,
                    layout=self._settings.scanner_keyboard_layout,
                    idle_timeout=self._settings.scanner_idle_timeout_s,
                )
            )

    async def stop(self) -> None:
        monitor, self._monitor = self._monitor, None
        scanners, self._scanners = self._scanners, []
        for scanner in scanners:
            await asyncio.to_thread(scanner.stop)
        if monitor is not None:
            await asyncio.to_thread(monitor.stop)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._readers_pool.shutdown(wait=False, cancel_futures=True)
        self._cps.close()

    def _add_scanner(self, scanner: SerialScanner | WedgeScanner) -> None:
        scanner.start()
        self._scanners.append(scanner)

    # --- queries ---------------------------------------------------------------------------------

    @property
    def degraded(self) -> str | None:
        if not self._settings.pcsc_enabled:
            return "disabled"
        return self._monitor.degraded if self._monitor is not None else "stopped"

    def readers(self) -> list[dict[str, Any]]:
        snapshot = self._monitor.snapshot() if self._monitor is not None else []
        with self._lock:
            reads = dict(self._reads)
        return [
            {
                "name": s.name,
                "card_present": s.card_present,
                "card_kind": s.kind.value if s.kind is not None else None,
                "atr": s.atr.hex().upper() if s.atr else None,
                "vitale_read_id": reads[s.name].read_id if s.name in reads else None,
            }
            for s in snapshot
        ]

    def scanners(self) -> list[dict[str, Any]]:
        return [
            {
                "device": getattr(sc, "port", None) or getattr(sc, "path", ""),
                "connected": sc.connected.is_set(),
            }
            for sc in self._scanners
        ]

    def wait_scanners_connected(self, timeout: float) -> bool:
        """True once every configured scanner has its device open (for start-up checks)."""
        return all(scanner.connected.wait(timeout) for scanner in list(self._scanners))

    def vitale(self, read_id: str) -> VitaleRead:
        with self._lock:
            found = next((r for r in self._reads.values() if r.read_id == read_id), None)
        if found is None:
            raise hw.ReaderNotFound("lecture de carte Vitale inconnue ou carte retirée")
        return found

    # --- monitor events (monitor thread) --------------------------------------------------------

    def on_monitor_event(self, event: MonitorEvent) -> None:
        if isinstance(event, ReaderAdded):
            self._events.publish("reader.added", {"reader": event.reader})
        elif isinstance(event, ReaderRemoved):
            self._events.publish("reader.removed", {"reader": event.reader})
        elif isinstance(event, CardInserted):
            self._card_in(event)
        elif isinstance(event, CardRemoved):
            self._card_out(event.reader)
        elif isinstance(event, MonitorDegraded):
            self._events.publish("hardware.degraded", {"reason": event.reason})
        elif isinstance(event, MonitorRecovered):
            self._events.publish("hardware.recovered", {})

    def _card_in(self, event: CardInserted) -> None:
        with self._lock:
            self._kinds[event.reader] = event.kind
        self._events.publish(
            "card.inserted",
            {"reader": event.reader, "kind": event.kind.value, "atr": event.atr.hex().upper()},
        )
        if event.kind is CardKind.CPS:
            self._cps.card_inserted(event.reader)
        elif event.kind in (CardKind.VITALE_2, CardKind.VITALE_1, CardKind.UNKNOWN):
            self._executor.submit(self._read_vitale, event.reader)

    def _card_out(self, reader: str) -> None:
        with self._lock:
            kind = self._kinds.pop(reader, None)
            self._reads.pop(reader, None)  # card contents never outlive the card
        self._cps.card_removed(reader)
        self._events.publish(
            "card.removed", {"reader": reader, "kind": kind.value if kind else None}
        )

    def _read_vitale(self, reader: str) -> None:
        deadline = self._settings.card_read_timeout_s
        try:
            card = self._readers_pool.submit(read_vitale_from_reader, reader).result(deadline)
        except FutureTimeout:
            late = drv.DeadlineExceeded(f"Vitale read over {deadline:.1f} s")
            self._read_failed(reader, late)
            return
        except drv.DriverError as exc:
            self._read_failed(reader, exc)
            return
        except Exception:  # a reader bug must be visible, not kill the worker silently
            log.exception("vitale_read_crashed", reader=reader)
            self._events.publish("vitale.error", {"reader": reader, "code": "internal-error"})
            return
        read = VitaleRead(str(uuid.uuid4()), reader, card)
        with self._lock:
            if reader not in self._kinds:  # removed while we were reading
                return
            self._reads[reader] = read
        log.info(
            "vitale_read",
            reader=reader,
            read_id=read.read_id,
            beneficiaries=len(card.beneficiaries),
            apdus=card.apdu_count,
        )
        self._events.publish(
            "vitale.read",
            {
                "reader": reader,
                "read_id": read.read_id,
                "beneficiaries": len(card.beneficiaries),
                "apdu_count": card.apdu_count,
            },
        )

    def _read_failed(self, reader: str, exc: drv.DriverError) -> None:
        error = hw.translate(exc)
        log.info("vitale_read_failed", reader=reader, code=exc.code)
        self._events.publish(
            "vitale.error", {"reader": reader, "code": error.slug, "driver_code": exc.code}
        )

    # --- scanners ----------------------------------------------------------------------------------

    def _payload(self, source: str) -> Any:
        def deliver(payload: bytes) -> None:
            self._scans.submit(payload, source)

        return deliver

    def _scanner_error(self, error: ScannerError) -> None:
        log.warning("scanner_error", code=error.code)
        self._events.publish("scanner.error", {"code": error.code})
