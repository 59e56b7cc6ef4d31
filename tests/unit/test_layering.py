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


# Dynamic imports hide a dependency from the rules above and from mypy. Each one left in lgo/ is
# listed here with why it must stay dynamic.
DYNAMIC_IMPORT_ALLOWED = {
    # saxonche (a GraalVM native image, the CI-SIS schematrons) is loaded only when a kit is set:
    # a daemon without the kit must not pay its start-up and memory.
    "lgo/documents/conformance.py": {"saxonche"},
}


def _dynamic_imports(path: Path) -> list[str]:
    """Calls that import by a name computed at run time: importlib.import_module, __import__."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib":
            found += [f"from importlib import {a.name}" for a in node.names
                      if a.name == "import_module"]  # fmt: skip
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__"):
            arg = node.args[0] if node.args else None
            target = arg.value if isinstance(arg, ast.Constant) else "<computed>"
            found.append(f"{name}({target})")
    return found


def test_no_dynamic_imports_in_lgo() -> None:
    found = []
    for path in sorted((ROOT / "lgo").rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        allowed = DYNAMIC_IMPORT_ALLOWED.get(relative, set())
        for call in _dynamic_imports(path):
            if not any(call == f"import_module({name})" for name in allowed):
                found.append(f"{relative}: {call}")
    assert found == []


def test_parts_are_linked_by_typed_attributes_not_string_keys() -> None:
    """No ``.extras`` registry, no ``PARTS`` list of modules, no ``hasattr`` probing: the
    composition root (lgo/bootstrap.py) passes each part what it needs."""
    found = []
    for path in sorted((ROOT / "lgo").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "extras":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .extras")
            elif isinstance(node, ast.Name) and node.id in ("PARTS", "hasattr"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.id}")
    assert found == []


def test_the_dynamic_import_check_sees_the_usual_spellings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\nfrom importlib import import_module\n"
        "importlib.import_module('lgo.services.x_part')\n__import__(name)\n",
        encoding="utf-8",
    )
    assert _dynamic_imports(sample) == [
        "from importlib import import_module", "import_module(lgo.services.x_part)",
        "__import__(<computed>)",
    ]  # fmt: skip
