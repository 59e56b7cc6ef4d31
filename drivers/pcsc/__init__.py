"""PC/SC access: typed context, card channel (LEAVE_CARD, T=0 handling) and the reader monitor."""

from drivers.pcsc.atr import CardKind, classify_atr
from drivers.pcsc.card import CardChannel, Response
from drivers.pcsc.context import PNP_READER, Context, ReaderStatus
from drivers.pcsc.monitor import (
    CardInserted,
    CardRemoved,
    MonitorDegraded,
    MonitorEvent,
    MonitorRecovered,
    ReaderAdded,
    ReaderMonitor,
    ReaderRemoved,
    ReaderSnapshot,
)

__all__ = [
    "PNP_READER",
    "CardChannel",
    "CardInserted",
    "CardKind",
    "CardRemoved",
    "Context",
    "MonitorDegraded",
    "MonitorEvent",
    "MonitorRecovered",
    "ReaderAdded",
    "ReaderMonitor",
    "ReaderRemoved",
    "ReaderSnapshot",
    "ReaderStatus",
    "Response",
    "classify_atr",
]
