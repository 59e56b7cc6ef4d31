"""e-prescription (Cnam, restricted): placeholders for the profiles and code lists we cannot read.

PLACEHOLDER values, each standing for an element of the Cnam e-prescription specification; see
``contracts/eprescription/profile.json`` and docs/contracts.md. A real adapter maps them.
"""

# PLACEHOLDER: the StructureDefinition URLs of the Cnam MedicationDispense / Bundle profiles.
EXT = "https://lgo.invalid/fhir/StructureDefinition/"
EXT_CONTROLLED = EXT + "controlled-drug"
EXT_LIST = EXT + "regulatory-list"
EXT_NON_SUBSTITUTABLE = EXT + "non-substitutable-reason"
EXT_INTERVENTION = EXT + "intervention"
EXT_INTERVENTION_REASON = EXT + "intervention-reason"
EXT_PRESCRIBER_AGREEMENT = EXT + "prescriber-agreement-date"
EXT_RENEWAL = EXT + "renewal-number"
EXT_PHARMACY = EXT + "pharmacy-finess"
# PLACEHOLDER: the Cnam code list of prescription status reasons (cancelled, expired, …).
STATUS_REASON_SYSTEM = "https://lgo.invalid/fhir/CodeSystem/prescription-status-reason"
# PLACEHOLDER: the service's refusal codes (OperationOutcome.issue.details), see ERROR_CODES.
OUTCOME_SYSTEM = "https://lgo.invalid/fhir/CodeSystem/eprescription-outcome"
# PLACEHOLDER: the Cnam motif of a dispensation supplémentaire exceptionnelle (domain.md §1.1, §6.1):
# intervention "modification", motif "renouvellement", sous-motif "situation particulière de
# renouvellement exceptionnel". The pharmacist decides alone; the renewal number runs beyond the
# prescribed count. Sent as the intervention reason.
EXCEPTIONAL_RENEWAL_REASON = (
    "renouvellement — situation particulière de renouvellement exceptionnel"
)
# PLACEHOLDER: the refusal codes lgo turns into typed errors (the others are generic refusals).
ERROR_CODES = (
    "prescription-unknown",
    "prescription-completed",
    "renewal-already-dispensed",
    "prescription-expired",
    "prescription-cancelled",
    "idempotency-key-reuse",
    "patient-mismatch",
)
