"""Every mapped table, imported here so that ``Base.metadata`` knows them all."""

from lgo.store.models.counters import Counter
from lgo.store.models.dispensing import (
    DispensationLineRow,
    DispensationRow,
    IdempotencyKey,
    OrdonnancierEntry,
    OrdonnancierHead,
    OutboxMessage,
    PrescriptionRow,
)
from lgo.store.models.documents import DocumentDelivery, DocumentRow
from lgo.store.models.missions import TrodTestRow, VaccinationRow
from lgo.store.models.patients import IdentityWorkItem, Patient, PatientIdentityCheck
from lgo.store.models.stats import StatsNationalCall, StatsSession

__all__ = [
    "Counter",
    "DispensationLineRow",
    "DispensationRow",
    "DocumentDelivery",
    "DocumentRow",
    "IdempotencyKey",
    "IdentityWorkItem",
    "OrdonnancierEntry",
    "OrdonnancierHead",
    "OutboxMessage",
    "Patient",
    "PatientIdentityCheck",
    "PrescriptionRow",
    "StatsNationalCall",
    "StatsSession",
    "TrodTestRow",
    "VaccinationRow",
]
