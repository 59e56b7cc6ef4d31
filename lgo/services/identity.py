"""Patients and their identity: creation from a card read, search, INS retrieval and verification
with INSi, RNIV status, history of checks and the identity work list.

The guard for everything that leaves the pharmacy::

    ins = identity.require_qualified_ins(patient_id)   # -> Ins, or IdentityNotQualified (409)

Dispensing, DMP and e-prescription executions call it (or :meth:`IdentityService.qualified_ins`,
the ``QualifiedInsProvider`` protocol of ``lgo.services.fhir_export``) before putting an INS in any
outgoing document. Only a **qualified** identity (INSi-checked *and* ID-document-checked) that is
not on the work list passes (domain.md §9 item 2).

Rules kept here:

- network calls (INSi) happen outside any database transaction; the write that follows is a
  conditional update on the status read before the call, so a concurrent change is detected
  (409) instead of overwritten;
- one INS belongs to one patient (unique index); a second patient getting the same INS is a
  probable duplicate: refused and put on the work list;
- a re-verification that fails (not found, several found, or another INS than the stored one)
  moves the patient to the work list and withdraws INSi's contribution to the status (RECUP → PROV,
  QUAL → VALI): the INS can no longer go out until a later INSi check succeeds;
- every INSi call and document check is written to ``patient_identity_checks``; logs carry ids,
  statuses and error slugs only, never a trait or a number.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from lgo.core.errors import Conflict, InvalidInput, LgoError, NotFound
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.domain.identity import (
    IdentityEvent,
    IdentityRuleError,
    IdentityStatus,
    Ins,
    RawBirthDate,
    Traits,
    TransitionRefusedError,
    check_cog,
    check_nir,
    check_sex,
    may_send_ins,
    next_status,
    normalise_name,
    split_given_names,
)
from lgo.national.insi import InsiError, InsiIdentity, InsiNotFound, InsiSeveralFound, VitaleQuery
from lgo.store.db import Database
from lgo.store.models import IdentityWorkItem, Patient, PatientIdentityCheck

log = get_logger(__name__)

# Re-exported for the API layer, which does not import national clients.
__all__ = ["IdentityService", "InsiPort", "NewPatient", "PatientView", "VitaleQuery"]

HIGH_TRUST_DOCUMENTS: Final = frozenset(
    {"cni", "passeport", "titre_sejour", "livret_famille_mineur", "acte_naissance_mineur"}
)
Source = Literal["manual", "vitale", "apcv", "insi"]


# --- errors -----------------------------------------------------------------------------------


class PatientUnknown(NotFound):
    slug = "patient-unknown"
    title = "Patient introuvable"


class IdentityInvalid(InvalidInput):
    slug = "identity-invalid"
    title = "Traits d'identité invalides"


class IdentityNotQualified(Conflict):
    slug = "identity-not-qualified"
    title = (
        "Identité non qualifiée : l'INS ne peut pas être transmis (récupérer l'INS avec INSi "
        "et contrôler une pièce d'identité)"
    )


class IdentityOnWorkList(IdentityNotQualified):
    slug = "identity-on-work-list"
    title = "Identité en liste de travail : la vérification INSi a échoué, l'INS est bloqué"


class IdentityTransitionRefused(Conflict):
    slug = "identity-transition-refused"
    title = "Changement de statut d'identité refusé"


class IdentityConcurrentChange(Conflict):
    slug = "identity-concurrent-change"
    title = "L'identité a été modifiée en même temps par un autre poste : recommencer"


class DuplicateIns(Conflict):
    slug = "identity-duplicate-ins"
    title = (
        "Cet INS est déjà attribué à un autre patient : doublon probable, mis en liste de travail"
    )


class InsMissing(Conflict):
    slug = "identity-ins-missing"
    title = "Aucun INS enregistré pour ce patient : le récupérer d'abord"


# --- ports and views --------------------------------------------------------------------------


class InsiPort(Protocol):
    def search_by_traits(self, traits: Traits, *, author_rpps: str | None) -> InsiIdentity: ...

    def search_by_vitale(self, query: VitaleQuery, *, author_rpps: str | None) -> InsiIdentity: ...


@dataclass(frozen=True)
class NewPatient:
    birth_name: str
    given_names: str
    birth_date: str
    sex: str | None = None
    birthplace: str | None = None
    used_name: str | None = None
    nir: str | None = None
    rank: int = 1  # rang de naissance on the card (twins)
    insured_nir: str | None = None  # the card holder's NIR ("ouvrant droit") for INSi by Vitale


@dataclass(frozen=True)
class PatientView:
    id: str
    birth_name: str
    used_name: str | None
    given_names: str
    sex: str | None
    birth_date: str
    birthplace: str | None
    nir: str | None
    source: str
    status: IdentityStatus
    ins: Ins | None
    ins_checked_at: datetime | None
    document_checked_at: datetime | None
    on_work_list: bool

    @property
    def ins_usable(self) -> bool:
        return self.ins is not None and may_send_ins(self.status, self.on_work_list)

    def public(self) -> dict[str, Any]:
        """API representation (the API is local and authenticated; logs never see it)."""
        return {
            "id": self.id,
            "birth_name": self.birth_name,
            "used_name": self.used_name,
            "given_names": self.given_names,
            "sex": self.sex,
            "birth_date": self.birth_date,
            "birthplace": self.birthplace,
            "nir": self.nir,
            "source": self.source,
            "identity_status": self.status.value,
            "identity_status_code": self.status.code,
            "identity_status_label": self.status.label,
            "ins": (
                {
                    "matricule": self.ins.matricule,
                    "oid": self.ins.oid.value,
                    "oid_label": self.ins.oid.label,
                }
                if self.ins
                else None
            ),
            "ins_usable": self.ins_usable,
            "ins_checked_at": _iso(self.ins_checked_at),
            "document_checked_at": _iso(self.document_checked_at),
            "on_work_list": self.on_work_list,
        }


@dataclass(frozen=True)
class CheckView:
    at: datetime
    kind: str
    outcome: str
    status_before: str
    status_after: str
    author_rpps: str | None
    error_slug: str | None


@dataclass(frozen=True)
class WorkItemView:
    id: int
    patient_id: str
    reason: str
    opened_at: datetime


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _view(row: Patient) -> PatientView:
    ins = Ins.of(row.ins_matricule, row.ins_oid) if row.ins_matricule and row.ins_oid else None
    return PatientView(
        id=row.id,
        birth_name=row.birth_name,
        used_name=row.used_name,
        given_names=row.given_names,
        sex=row.sex,
        birth_date=row.birth_date_raw,
        birthplace=row.birth_place_code,
        nir=row.nir,
        source=row.source,
        status=IdentityStatus(row.identity_status),
        ins=ins,
        ins_checked_at=row.ins_checked_at,
        document_checked_at=row.document_checked_at,
        on_work_list=row.on_work_list,
    )


def _traits(view: PatientView) -> Traits:
    if view.sex is None:
        raise IdentityInvalid("Sexe inconnu : le saisir avant d'interroger INSi.")
    try:
        return Traits.of(
            view.birth_name, view.given_names, view.sex, view.birth_date, view.birthplace
        )
    except IdentityRuleError as exc:
        raise IdentityInvalid(str(exc)) from None


# --- the service ------------------------------------------------------------------------------


class IdentityService:
    def __init__(
        self,
        db: Database,
        insi: InsiPort,
        events: EventBus | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._insi = insi
        self._events = events
        self._clock = clock

    # patients ---------------------------------------------------------------------------------

    def create_patient(self, data: NewPatient, *, source: Source = "manual") -> PatientView:
        """Validate and store a new patient (status provisional). Nothing is stored on error."""
        row = self._new_row(data, source)
        with self._db.uow() as uow:
            uow.session.add(row)
            uow.session.flush()
            view = _view(row)
            uow.commit()
        log.info("patient_created", patient_id=view.id, source=source)
        return view

    def create_from_card(
        self, data: NewPatient, *, source: Literal["vitale", "apcv"]
    ) -> PatientView:
        """The patient of a carte Vitale or apCV read, created once: the card NIR, birth date and
        rank make a unique key, so the same beneficiary read again (or by two counters at once)
        gives the same record."""
        if not data.nir:
            raise IdentityInvalid("Lecture de carte sans NIR.")
        row = self._new_row(data, source)
        row.card_key = f"{row.nir}:{row.birth_date_raw}:{data.rank}"
        try:
            with self._db.uow() as uow:
                uow.session.add(row)
                uow.session.flush()
                view = _view(row)
                uow.commit()
        except IntegrityError:
            with self._db.uow(readonly=True) as uow:
                stmt = select(Patient).where(Patient.card_key == row.card_key)
                existing = uow.session.scalars(stmt).one()
                return _view(existing)
        log.info("patient_created", patient_id=view.id, source=source)
        return view

    def get(self, patient_id: str) -> PatientView:
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(Patient, patient_id)
            if row is None:
                raise PatientUnknown()
            return _view(row)

    def search(
        self,
        *,
        name: str | None = None,
        birth_date: str | None = None,
        nir: str | None = None,
        ins: str | None = None,
        limit: int = 50,
    ) -> list[PatientView]:
        """Patients whose birth or used name starts with ``name`` (accents and case ignored),
        with the exact birth date / NIR / INS when given."""
        stmt = select(Patient)
        try:
            if name:
                prefix = normalise_name(name)
                stmt = stmt.where(
                    or_(Patient.birth_name.startswith(prefix), Patient.used_name.startswith(prefix))
                )
            if birth_date:
                stmt = stmt.where(Patient.birth_date_raw == RawBirthDate.parse(birth_date).raw)
            if nir:
                stmt = stmt.where(Patient.nir == check_nir(nir))
            if ins:
                stmt = stmt.where(Patient.ins_matricule == check_nir(ins))
        except IdentityRuleError as exc:
            raise IdentityInvalid(str(exc)) from None
        stmt = stmt.order_by(Patient.birth_name, Patient.given_names, Patient.id).limit(limit)
        with self._db.uow(readonly=True) as uow:
            return [_view(row) for row in uow.session.scalars(stmt)]

    # INS --------------------------------------------------------------------------------------

    def retrieve_ins(
        self,
        patient_id: str,
        *,
        author_rpps: str | None,
        vitale: VitaleQuery | None = None,
    ) -> PatientView:
        """Ask INSi for the INS (by traits, or by the card data given); on success the INS and
        INSi's reference traits are stored and the status moves (PROV→RECUP, VALI→QUAL)."""
        view = self.get(patient_id)
        kind = "insi_vitale" if vitale else "insi_traits"
        try:
            if vitale is not None:
                found = self._insi.search_by_vitale(vitale, author_rpps=author_rpps)
            else:
                found = self._insi.search_by_traits(_traits(view), author_rpps=author_rpps)
        except InsiError as exc:
            self._record(view, kind, _outcome(exc), view.status, author_rpps, exc.slug)
            raise
        return self._accept(view, found, kind, author_rpps)

    def verify_ins(self, patient_id: str, *, author_rpps: str | None) -> PatientView:
        """Re-verify the stored INS with the stored traits. KO → work list, INS blocked."""
        view = self.get(patient_id)
        if view.ins is None:
            raise InsMissing()
        try:
            found = self._insi.search_by_traits(_traits(view), author_rpps=author_rpps)
        except (InsiNotFound, InsiSeveralFound) as exc:
            return self._verification_failed(view, _outcome(exc), author_rpps, exc.slug)
        except InsiError as exc:
            self._record(view, "insi_verify", _outcome(exc), view.status, author_rpps, exc.slug)
            raise
        if not found.knows(view.ins):
            return self._verification_failed(view, "mismatch", author_rpps, None)
        return self._accept(view, found, "insi_verify", author_rpps)

    def record_document_check(
        self, patient_id: str, document: str, *, author_rpps: str | None
    ) -> PatientView:
        """A high-trust ID document was seen at the counter (PROV→VALI, RECUP→QUAL)."""
        if document not in HIGH_TRUST_DOCUMENTS:
            raise IdentityInvalid(
                "Pièce d'identité non reconnue à haut niveau de confiance : "
                + ", ".join(sorted(HIGH_TRUST_DOCUMENTS))
            )
        view = self.get(patient_id)
        after = self._next(view.status, IdentityEvent.DOCUMENT_CHECKED)
        now = self._clock()
        with self._db.uow() as uow:
            self._conditional_update(
                uow.session, view, after, document_checked_at=now, document_kind=document
            )
            self._add_check(uow.session, view, "document", "checked", after, author_rpps, None, now)
            uow.commit()
        return self._changed(view, after)

    # guard ------------------------------------------------------------------------------------

    def require_qualified_ins(self, patient_id: str) -> Ins:
        """The patient's INS if it may go out in a document or execution, else a typed error."""
        view = self.get(patient_id)
        if view.on_work_list:
            raise IdentityOnWorkList()
        if view.ins is None or not may_send_ins(view.status):
            raise IdentityNotQualified(identity_status=view.status.code)
        return view.ins

    def qualified_ins(self, patient_id: str) -> tuple[str, str] | None:
        """``QualifiedInsProvider`` (fhir_export): (INS, OID) when qualified, else None."""
        try:
            ins = self.require_qualified_ins(patient_id)
        except (IdentityNotQualified, PatientUnknown):
            return None
        return ins.matricule, ins.oid.value

    # history and work list --------------------------------------------------------------------

    def checks(self, patient_id: str) -> list[CheckView]:
        stmt = (
            select(PatientIdentityCheck)
            .where(PatientIdentityCheck.patient_id == patient_id)
            .order_by(PatientIdentityCheck.id)
        )
        with self._db.uow(readonly=True) as uow:
            return [
                CheckView(
                    c.at,
                    c.kind,
                    c.outcome,
                    c.status_before,
                    c.status_after,
                    c.author_rpps,
                    c.error_slug,
                )
                for c in uow.session.scalars(stmt)
            ]

    def work_list(self) -> list[WorkItemView]:
        stmt = (
            select(IdentityWorkItem)
            .where(IdentityWorkItem.resolved_at.is_(None))
            .order_by(IdentityWorkItem.id)
        )
        with self._db.uow(readonly=True) as uow:
            return [
                WorkItemView(w.id, w.patient_id, w.reason, w.opened_at)
                for w in uow.session.scalars(stmt)
            ]

    def count_on_work_list(self) -> int:
        stmt = select(func.count()).select_from(Patient).where(Patient.on_work_list.is_(True))
        with self._db.uow(readonly=True) as uow:
            return int(uow.session.scalar(stmt) or 0)

    # internals --------------------------------------------------------------------------------

    def _new_row(self, data: NewPatient, source: str) -> Patient:
        try:
            names = split_given_names(data.given_names)
            if not names:
                raise IdentityInvalid("Au moins un prénom est requis.")
            now = self._clock()
            return Patient(
                id=str(uuid.uuid4()),
                created_at=now,
                updated_at=now,
                birth_name=normalise_name(data.birth_name),
                used_name=normalise_name(data.used_name) if data.used_name else None,
                given_names=" ".join(names),
                sex=check_sex(data.sex).value if data.sex else None,
                birth_date_raw=RawBirthDate.parse(data.birth_date).raw,
                birth_place_code=check_cog(data.birthplace) if data.birthplace else None,
                nir=check_nir(data.nir) if data.nir else None,
                source=source,
                identity_status=IdentityStatus.PROV.value,
                on_work_list=False,
            )
        except IdentityRuleError as exc:
            raise IdentityInvalid(str(exc)) from None

    def _next(self, status: IdentityStatus, event: IdentityEvent) -> IdentityStatus:
        try:
            return next_status(status, event)
        except TransitionRefusedError as exc:
            raise IdentityTransitionRefused(str(exc)) from None

    def _accept(
        self, view: PatientView, found: InsiIdentity, kind: str, author_rpps: str | None
    ) -> PatientView:
        after = self._next(view.status, IdentityEvent.INSI_OK)
        now = self._clock()
        changes: dict[str, Any] = {
            "ins_matricule": found.ins.matricule,
            "ins_oid": found.ins.oid.value,
            "ins_checked_at": now,
            # INSi's traits become the reference traits (RNIV).
            "birth_name": found.birth_name,
            "given_names": " ".join(found.given_names),
            "sex": found.sex,
            "birth_date_raw": found.birth_date.raw,
            "birth_place_code": found.birthplace,
            "on_work_list": False,
        }
        try:
            with self._db.uow() as uow:
                self._conditional_update(uow.session, view, after, **changes)
                self._add_check(uow.session, view, kind, "found", after, author_rpps, None, now)
                self._resolve_work_items(uow.session, view.id, now)
                uow.commit()
        except IntegrityError:
            self._duplicate(view, kind, author_rpps)
            raise DuplicateIns() from None
        return self._changed(view, after)

    def _verification_failed(
        self, view: PatientView, outcome: str, author_rpps: str | None, slug: str | None
    ) -> PatientView:
        try:
            after = next_status(view.status, IdentityEvent.INSI_KO)
        except TransitionRefusedError:
            after = view.status  # an INS never confirmed by INSi (e.g. read from apCV): status kept
        now = self._clock()
        with self._db.uow() as uow:
            self._conditional_update(
                uow.session, view, after, on_work_list=True, ins_checked_at=now
            )
            self._add_check(
                uow.session, view, "insi_verify", outcome, after, author_rpps, slug, now
            )
            uow.session.add(
                IdentityWorkItem(
                    patient_id=view.id, reason=f"verification_{outcome}", opened_at=now
                )
            )
            uow.commit()
        log.warning("identity_work_list", patient_id=view.id, reason=outcome)
        return self._changed(view, after, work_list=True)

    def _duplicate(self, view: PatientView, kind: str, author_rpps: str | None) -> None:
        now = self._clock()
        with self._db.uow() as uow:
            uow.session.execute(
                update(Patient)
                .where(Patient.id == view.id)
                .values(on_work_list=True, updated_at=now)
            )
            self._add_check(
                uow.session,
                view,
                kind,
                "duplicate_ins",
                view.status,
                author_rpps,
                DuplicateIns.slug,
                now,
            )
            uow.session.add(
                IdentityWorkItem(patient_id=view.id, reason="duplicate_ins", opened_at=now)
            )
            uow.commit()
        log.warning("identity_work_list", patient_id=view.id, reason="duplicate_ins")

    def _conditional_update(
        self, session: Any, view: PatientView, after: IdentityStatus, **values: Any
    ) -> None:
        # Only if nobody changed the status since we read it (no lost update across counters).
        result = session.execute(
            update(Patient)
            .where(Patient.id == view.id, Patient.identity_status == view.status.value)
            .values(identity_status=after.value, updated_at=self._clock(), **values)
        )
        if result.rowcount != 1:
            raise IdentityConcurrentChange()

    def _add_check(
        self,
        session: Any,
        view: PatientView,
        kind: str,
        outcome: str,
        after: IdentityStatus,
        author_rpps: str | None,
        slug: str | None,
        at: datetime,
    ) -> None:
        session.add(
            PatientIdentityCheck(
                patient_id=view.id,
                at=at,
                kind=kind,
                outcome=outcome,
                status_before=view.status.value,
                status_after=after.value,
                author_rpps=author_rpps,
                error_slug=slug,
            )
        )

    def _record(
        self,
        view: PatientView,
        kind: str,
        outcome: str,
        after: IdentityStatus,
        author_rpps: str | None,
        slug: str | None,
    ) -> None:
        with self._db.uow() as uow:
            self._add_check(
                uow.session, view, kind, outcome, after, author_rpps, slug, self._clock()
            )
            uow.commit()

    def _resolve_work_items(self, session: Any, patient_id: str, now: datetime) -> None:
        session.execute(
            update(IdentityWorkItem)
            .where(
                IdentityWorkItem.patient_id == patient_id, IdentityWorkItem.resolved_at.is_(None)
            )
            .values(resolved_at=now, resolution="insi_ok")
        )

    def _changed(
        self, view: PatientView, after: IdentityStatus, *, work_list: bool = False
    ) -> PatientView:
        log.info("identity_status", patient_id=view.id, before=view.status.code, after=after.code)
        if self._events is not None:
            self._events.publish(
                "patient.identity_changed",
                {"patient_id": view.id, "status": after.value, "on_work_list": work_list},
            )
        return self.get(view.id)


def _outcome(exc: LgoError) -> str:
    if isinstance(exc, InsiNotFound):
        return "not_found"
    if isinstance(exc, InsiSeveralFound):
        return "several_found"
    return "error"
