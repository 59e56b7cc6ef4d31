"""Dataclasses to plain values for JSON, without ``dataclasses.asdict``'s deep copies.

``asdict`` deep-copies every leaf (``copy.deepcopy`` of each string, number and date) and rebuilds
each tuple through its constructor; the dispensation's commit serialises a prescription and its
answer on every request, where that costs more than the statements around it. The values here are
only ever serialised, so the leaves are shared instead of copied.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

# The leaves met most often: returned at once, before the container checks.
_SCALARS = frozenset({str, int, bool, float, type(None)})


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(value: Any) -> tuple[str, ...]:
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(value))
    return names


def plain(value: Any) -> Any:
    """``value`` with every dataclass as a dict of its fields and every list or tuple as a list
    (JSON has no tuple), recursively; dict keys and any other value (enum, date, Decimal…) are
    kept as they are, for the JSON encoder's ``default``."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, list | tuple):
        return [item if type(item) in _SCALARS else plain(item) for item in value]
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else plain(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for name in _field_names(value):
            item = getattr(value, name)
            # Most fields are scalars: no call for them.
            out[name] = item if type(item) in _SCALARS else plain(item)
        return out
    return value
