"""Counter scanners (serial, keyboard wedge) and the classification of what they read."""

from drivers.scanners.classify import (
    Classification,
    Classifier,
    ClassifierConfig,
    ScanKind,
    normalise,
)
from drivers.scanners.devices import SerialScanner, WedgeScanner
from drivers.scanners.gs1 import Gs1Data, parse_gs1
from drivers.scanners.wedge_keys import WedgeDecoder

__all__ = [
    "Classification",
    "Classifier",
    "ClassifierConfig",
    "Gs1Data",
    "ScanKind",
    "SerialScanner",
    "WedgeDecoder",
    "WedgeScanner",
    "normalise",
    "parse_gs1",
]
