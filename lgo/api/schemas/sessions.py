"""Answers of /v1/cps/session (the professional session and the CPS card)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgo.api.schemas import View


class ProfessionalView(View):
    """The professional identity (from the CPS card or Pro Santé Connect); no secret."""

    national_id: str = Field(description="Identifiant national (8 + RPPS).")
    rpps: str
    family_name: str
    given_name: str
    profession_code: str = Field(description="21 : pharmacien.")
    profession_label: str
    structure_id: str | None = Field(description="FINESS ou SIRET de l'officine.")
    structure_name: str | None


class SessionInfo(View):
    id: str
    kind: Literal["cps", "ecps"]
    opened_at: str
    expires_at: str | None
    professional: ProfessionalView


class CardStatus(View):
    """The inserted CPS card, read over PC/SC (no PIN involved)."""

    reader: str
    serial: str
    pin_tries_left: int | None = Field(description="Essais de code restants (compteur carte).")
    pin_tries_max: int | None
    pin_locked: bool | None = Field(None, description="Présent quand l'état du code est connu.")
    pin_final_try: bool | None = Field(None, description="Dernier essai : à confirmer.")
    token_found: bool | None = Field(
        None, description="Présent (false) quand le module PKCS#11 ne voit pas la carte."
    )
