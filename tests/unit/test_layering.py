"""Imports go one way (docs/DEVELOPING.md). Checked on the source, so a violation fails here first."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(
    folder: Path, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for name in _imports(path):
            if name.startswith(forbidden) and not name.startswith(allowed):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden", "allowed"),
    [
        ("lgo/domain", ("lgo", "drivers", "hwsim", "sqlalchemy", "fastapi", "httpx", "smartcard", "pkcs11"),
         ("lgo.domain",)),
        ("drivers", ("lgo", "hwsim"), ()),
        ("hw-sim/hwsim", ("lgo", "drivers"), ()),
        ("lgo/store", ("lgo.api", "lgo.national", "drivers", "hwsim"), ()),
        ("lgo/national", ("lgo.api", "lgo.services", "lgo.store", "drivers", "hwsim"), ()),
    ],
)  # fmt: skip
def test_imports_go_one_way(
    folder: str, forbidden: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    assert _violations(ROOT / folder, forbidden, allowed) == []
