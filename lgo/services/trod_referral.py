"""The referral letter to a doctor after a rapid test outside the protocol: a printable HTML page.

Every value is escaped; the page has no script and no remote resource (served with a strict CSP).
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from lgo.domain.trod import EXCLUSION_LABELS, Exclusion
from lgo.services.local_time import PHARMACY_TZ

if TYPE_CHECKING:  # the view's module renders its letter with this one
    from lgo.services.trod import TrodKitView, TrodView

TEST_LABELS = {
    "angine": "TROD angine (streptocoque du groupe A)",
    "cystite": "Bandelette urinaire (cystite)",
    "covid-19": "TROD Covid-19 (antigène SARS-CoV-2)",
    "grippe": "TROD grippe (antigènes A et B)",
}
READING_LABELS = {
    "positif": "positif",
    "negatif": "négatif",
    "indetermine": "indéterminé",
    "echantillon-insatisfaisant": "échantillon insatisfaisant",
}
ANALYTE_LABELS = {
    "streptocoque-a": "streptocoque A",
    "leucocytes": "leucocytes",
    "nitrites": "nitrites",
    "sars-cov-2": "SARS-CoV-2",
    "grippe-a": "grippe A",
    "grippe-b": "grippe B",
}
_STYLE = (
    "body{font-family:sans-serif;max-width:42rem;margin:2rem auto;color:#111}"
    "h1{font-size:1.3rem}table{border-collapse:collapse}td,th{padding:.2rem .6rem;"
    "text-align:left;vertical-align:top}.sign{margin-top:3rem}@media print{.noprint{display:none}}"
)


def _birth(raw: str) -> str:
    if len(raw) == 8 and raw.isdigit():
        return f"{raw[6:]}/{raw[4:6]}/{raw[:4]}"
    return escape(raw)


def _kit(kit: TrodKitView) -> str:
    return f"{kit.manufacturer} {kit.reference}, lot {kit.lot}"


def _row(label: str, value: str) -> str:
    return f"<tr><th>{escape(label)}</th><td>{value}</td></tr>"


def render_referral(
    view: TrodView, patient_name: str, birth_raw: str, pharmacy: tuple[str, str]
) -> str:
    """The letter: pharmacy, patient, test and result, the reasons for the referral, signature."""
    performed = datetime.fromisoformat(view.performed_at).astimezone(PHARMACY_TZ)
    criteria = view.criteria
    readings = ", ".join(
        f"{escape(ANALYTE_LABELS.get(k, k))} : {escape(READING_LABELS.get(v, v))}"
        for k, v in sorted(view.readings.items())
    )
    reasons = "".join(f"<li>{escape(r.message)}</li>" for r in view.protocol.refusals)
    if not reasons:
        reasons = "<li>Résultat du test à confirmer par un médecin.</li>"
    exclusions = ", ".join(escape(EXCLUSION_LABELS[Exclusion(e)]) for e in criteria.exclusions)
    rows = [
        _row("Patient", escape(patient_name)),
        _row("Né(e) le", _birth(birth_raw)),
        _row("Test", escape(TEST_LABELS.get(view.test, view.test))),
        _row("Réalisé le", performed.strftime("%d/%m/%Y à %H:%M")),
        _row("Résultat", readings),
        _row("Kit", escape(_kit(view.kit))),
    ]
    if criteria.temperature_c:
        celsius = str(criteria.temperature_c).replace(".", ",")
        rows.append(_row("Température", escape(f"{celsius} °C")))
    if view.protocol.score is not None:
        rows.append(_row("Score de Mac Isaac", str(view.protocol.score)))
    if exclusions:
        rows.append(_row("Critères d'exclusion relevés", exclusions))
    professional = view.professional
    name, address = pharmacy
    return (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>Orientation vers un médecin</title><style>{_STYLE}</style></head><body>"
        f"<p><strong>{escape(name)}</strong><br>{escape(address)}</p>"
        "<h1>Lettre d'orientation vers un médecin</h1>"
        "<p>Madame, Monsieur le Docteur,</p>"
        "<p>J'ai reçu ce jour à l'officine le patient ci-dessous. Sa situation ne permet pas la "
        "délivrance d'un antibiotique sans ordonnance dans le cadre du protocole national "
        "(arrêté du 17 juin 2024) ; je vous l'adresse pour une consultation.</p>"
        f"<table>{''.join(rows)}</table>"
        f"<p>Motif(s) de l'orientation :</p><ul>{reasons}</ul>"
        "<p>Aucun antibiotique n'a été délivré.</p>"
        f'<p class="sign">{escape(professional.name)}, pharmacien<br>'
        f"RPPS {escape(professional.rpps)}<br>Le {performed.strftime('%d/%m/%Y')}</p>"
        "</body></html>"
    )
