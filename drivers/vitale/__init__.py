"""Vitale 2 reading: APDU sequence and TLV decoding into typed models."""

from drivers.vitale.models import Beneficiary, VitaleCard
from drivers.vitale.nir import nir_is_valid, nir_key
from drivers.vitale.reader import decode, read_vitale, read_vitale_from_reader

__all__ = [
    "Beneficiary",
    "VitaleCard",
    "decode",
    "nir_is_valid",
    "nir_key",
    "read_vitale",
    "read_vitale_from_reader",
]
