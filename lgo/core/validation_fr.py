"""French messages for request validation errors (pydantic), one per field, for the counter.

Pydantic's own messages are English; the problem's ``errors[].msg`` is what the pharmacist reads
next to the field. The common error types are translated with their limits; a validator's own
message (already French in lgo's models) is kept without pydantic's "Value error, " prefix; any
other type keeps pydantic's message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_MESSAGES: dict[str, str] = {
    "missing": "champ obligatoire",
    "extra_forbidden": "champ inconnu",
    "string_type": "texte attendu",
    "string_too_short": "trop court : au moins {min_length} caractère(s)",
    "string_too_long": "trop long : au plus {max_length} caractère(s)",
    "string_pattern_mismatch": "format invalide",
    "int_type": "nombre entier attendu",
    "int_parsing": "nombre entier attendu",
    "int_from_float": "nombre entier attendu",
    "float_type": "nombre attendu",
    "float_parsing": "nombre attendu",
    "decimal_type": "nombre décimal attendu",
    "decimal_parsing": "nombre décimal attendu",
    "bool_type": "vrai ou faux attendu",
    "bool_parsing": "vrai ou faux attendu",
    "greater_than": "doit être supérieur à {gt}",
    "greater_than_equal": "doit être supérieur ou égal à {ge}",
    "less_than": "doit être inférieur à {lt}",
    "less_than_equal": "doit être inférieur ou égal à {le}",
    "enum": "valeur non reconnue ; valeurs possibles : {expected}",
    "literal_error": "valeur non reconnue ; valeurs possibles : {expected}",
    "date_type": "date attendue (AAAA-MM-JJ)",
    "date_parsing": "date attendue (AAAA-MM-JJ)",
    "date_from_datetime_parsing": "date attendue (AAAA-MM-JJ)",
    "datetime_type": "date et heure attendues (ISO 8601 avec fuseau)",
    "datetime_parsing": "date et heure attendues (ISO 8601 avec fuseau)",
    "datetime_from_date_parsing": "date et heure attendues (ISO 8601 avec fuseau)",
    "uuid_parsing": "identifiant (UUID) invalide",
    "uuid_type": "identifiant (UUID) invalide",
    "list_type": "liste attendue",
    "dict_type": "objet attendu",
    "model_type": "objet attendu",
    "too_short": "trop peu d'éléments : au moins {min_length}",
    "too_long": "trop d'éléments : au plus {max_length}",
    "json_invalid": "JSON invalide",
    "decimal_max_digits": "trop de chiffres",
    "decimal_max_places": "trop de décimales",
}
_VALUE_ERROR_PREFIX = "Value error, "
# A limit and the words that introduce it ("au moins {min_length}", "à {gt}", ": {expected}").
_PLACEHOLDER = re.compile(r"[\s:;]*(?:à|au moins|au plus|valeurs possibles :)?\s*\{\w+\}.*$")


def french_message(error: Mapping[str, Any]) -> str:
    """The French message of one pydantic error (``type``, ``msg``, ``ctx``)."""
    kind = str(error.get("type", ""))
    message = str(error.get("msg", ""))
    if kind == "value_error":
        return message.removeprefix(_VALUE_ERROR_PREFIX)
    template = _MESSAGES.get(kind)
    if template is None:
        return message
    context = {key: str(value) for key, value in (error.get("ctx") or {}).items()}
    try:
        return template.format(**context)
    except (KeyError, IndexError):  # a limit missing from ctx: the message without it
        return _PLACEHOLDER.sub("", template).strip(" :;")
