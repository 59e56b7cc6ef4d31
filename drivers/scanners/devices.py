"""Scanner devices: serial (CDC-ACM / RS-232 / pty) and keyboard wedge (evdev, grabbed).

Each device runs one reader thread and hands complete raw payloads (bytes, terminator removed) to
a callback. A code ends at the terminator (CR or LF) or after ``idle_timeout`` s without input.
The device is reopened with backoff when it disappears; failures are reported through
``on_error`` with a typed :class:`ScannerError`, never silently dropped. Call :meth:`stop` to end.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from drivers.errors import PayloadTooLong, ScannerError, ScannerUnavailable
from drivers.scanners.wedge_keys import WedgeDecoder

log = logging.getLogger(__name__)

PayloadCallback = Callable[[bytes], None]
ErrorCallback = Callable[[ScannerError], None]
MAX_PAYLOAD = 4096


class _ThreadedDevice:
    def __init__(
        self,
        on_payload: PayloadCallback,
        on_error: ErrorCallback | None,
        idle_timeout: float,
        name: str,
    ) -> None:
        self._on_payload = on_payload
        self._on_error = on_error
        self.idle_timeout = idle_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                self._session()
                backoff = 0.2
            except ScannerError as exc:
                self.connected.clear()
                self._report(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # the thread must not die silently
                self.connected.clear()
                log.exception("scanner_unexpected_error")
                self._report(ScannerUnavailable(type(exc).__name__))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _session(self) -> None:
        raise NotImplementedError

    def _deliver(self, payload: bytes) -> None:
        if not payload:
            return
        try:
            self._on_payload(payload)
        except Exception:
            log.exception("scanner_callback_failed")

    def _report(self, error: ScannerError) -> None:
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:
                log.exception("scanner_error_callback_failed")


class SerialScanner(_ThreadedDevice):
    """A scanner on a serial port (``/dev/ttyACM0``, or hw-sim's pty)."""

    def __init__(
        self,
        port: str,
        on_payload: PayloadCallback,
        on_error: ErrorCallback | None = None,
        *,
        baudrate: int = 9600,
        idle_timeout: float = 0.3,
    ) -> None:
        super().__init__(on_payload, on_error, idle_timeout, f"scanner-serial:{port}")
        self.port = port
        self.baudrate = baudrate

    def _session(self) -> None:
        try:
            device = serial.Serial(self.port, self.baudrate, timeout=0.05)
        except (serial.SerialException, OSError) as exc:
            raise ScannerUnavailable(f"cannot open {self.port}: {type(exc).__name__}") from exc
        self.connected.set()
        try:
            self._read(device)
        finally:
            device.close()

    def _read(self, device: Any) -> None:
        buffer = bytearray()
        last = time.monotonic()
        overflow = False
        while not self._stop.is_set():
            try:
                chunk: bytes = device.read(256)
            except (serial.SerialException, OSError) as exc:
                raise ScannerUnavailable(f"{self.port} went away") from exc
            now = time.monotonic()
            if not chunk:
                if buffer and now - last >= self.idle_timeout:
                    self._end(bytes(buffer), overflow)
                    buffer.clear()
                    overflow = False
                continue
            last = now
            for byte in chunk:
                if byte in (0x0D, 0x0A):
                    self._end(bytes(buffer), overflow)
                    buffer.clear()
                    overflow = False
                elif len(buffer) >= MAX_PAYLOAD:
                    overflow = True
                else:
                    buffer.append(byte)

    def _end(self, payload: bytes, overflow: bool) -> None:
        if overflow:
            self._report(PayloadTooLong(f"code longer than {MAX_PAYLOAD} bytes dropped"))
        else:
            self._deliver(payload)


class WedgeScanner(_ThreadedDevice):
    """A keyboard-wedge scanner read with evdev, grabbed so it never types into other windows."""

    def __init__(
        self,
        path: str,
        on_payload: PayloadCallback,
        on_error: ErrorCallback | None = None,
        *,
        layout: str = "fr",
        idle_timeout: float = 0.3,
    ) -> None:
        super().__init__(on_payload, on_error, idle_timeout, f"scanner-wedge:{path}")
        self.path = path
        self.decoder = WedgeDecoder(layout=layout, max_length=MAX_PAYLOAD)

    def _session(self) -> None:
        try:
            import evdev  # Linux only; imported here so other platforms can import this module

            device = evdev.InputDevice(self.path)
            device.grab()
        except (OSError, ImportError) as exc:
            raise ScannerUnavailable(f"cannot open {self.path}: {type(exc).__name__}") from exc
        self.connected.set()
        try:
            self._read(device)
        finally:
            with contextlib.suppress(OSError):  # the device is gone: nothing to release
                device.ungrab()
            device.close()

    def _read(self, device: Any) -> None:
        key_event = 1  # EV_KEY
        while not self._stop.is_set():
            ready, _, _ = select.select([device.fd], [], [], self.idle_timeout)
            if not ready:
                self._flush()
                continue
            try:
                events = list(device.read())
            except OSError as exc:
                raise ScannerUnavailable(f"{self.path} went away") from exc
            for event in events:
                if event.type != key_event:
                    continue
                text = self.decoder.feed(event.code, event.value)
                if text is not None:
                    self._deliver(text.encode("latin-1", "replace"))

    def _flush(self) -> None:
        overflowed = self.decoder.overflowed
        text = self.decoder.flush()
        if overflowed:
            self._report(PayloadTooLong(f"code longer than {MAX_PAYLOAD} keys dropped"))
        elif text is not None:
            self._deliver(text.encode("latin-1", "replace"))
