"""lgo.core.plain: dataclasses to plain values for JSON, the same shape as ``dataclasses.asdict``
without its deep copies (the dispensation's commit serialises with it on every request)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from lgo.core.plain import plain


class Kind(StrEnum):
    BOX = "box"


@dataclass(frozen=True)
class Leaf:
    kind: Kind
    amount: Decimal
    on: date


@dataclass(frozen=True)
class Tree:
    name: str
    leaves: tuple[Leaf, ...]
    tags: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)
    parent: Tree | None = None


def _tree() -> Tree:
    leaf = Leaf(Kind.BOX, Decimal("0.5"), date(2026, 2, 3))
    child = Tree("enfant", (leaf,), ["a"], {"n": 1, "nested": [leaf]})
    return Tree("racine", (leaf, leaf), [], {}, parent=child)


def test_same_json_as_asdict() -> None:
    tree = _tree()
    assert json.dumps(plain(tree), default=str, sort_keys=True) == json.dumps(
        asdict(tree), default=str, sort_keys=True
    )


def test_dataclasses_become_dicts_and_tuples_lists_leaves_shared() -> None:
    tree = _tree()
    out = plain(tree)
    assert (
        out["leaves"] == [{"kind": Kind.BOX, "amount": Decimal("0.5"), "on": date(2026, 2, 3)}] * 2
    )
    assert out["parent"]["extra"]["nested"][0]["on"] == date(2026, 2, 3)
    assert out["parent"]["extra"]["nested"] is not tree.parent.extra["nested"]
    # Leaves are the same objects (no deep copy): the result is only ever serialised.
    assert out["leaves"][0]["amount"] is tree.leaves[0].amount
    assert plain("texte") == "texte" and plain(None) is None and plain(Kind.BOX) is Kind.BOX
