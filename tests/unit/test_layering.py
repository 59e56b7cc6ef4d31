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
        (
            "lgo/domain",
            ("lgo", "drivers", "hwsim", "sqlalchemy", "fastapi", "httpx", "smartcard", "pkcs11"),
            ("lgo.domain",),
        ),
        ("drivers", ("lgo", "hwsim"), ()),
        ("hw-sim/hwsim", ("lgo", "drivers"), ()),
        ("lgo/core", ("lgo", "drivers", "hwsim"), ("lgo.core",)),
        ("lgo/runtime", ("lgo", "drivers", "hwsim"), ("lgo.core", "lgo.runtime")),
        (
            "lgo/store",
            (
                "lgo.api",
                "lgo.cli",
                "lgo.doctor",
                "lgo.services",
                "lgo.national",
                "drivers",
                "hwsim",
            ),
            (),
        ),
        (
            "lgo/national",
            ("lgo.api", "lgo.cli", "lgo.doctor", "lgo.services", "lgo.store", "drivers", "hwsim"),
            (),
        ),
        (
            "lgo/documents",
            ("lgo.api", "lgo.cli", "lgo.doctor", "lgo.services", "drivers", "hwsim"),
            (),
        ),
        (
            "lgo/services",
            ("lgo.api", "lgo.cli", "lgo.doctor", "lgo.bootstrap.container", "hwsim"),
            (),
        ),
        ("lgo/api", ("lgo.cli", "lgo.doctor", "hwsim"), ()),
        ("lgo/doctor", ("lgo.api", "lgo.cli", "lgo.services", "hwsim"), ()),
    ],
)
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
            found += [
                f"from importlib import {a.name}" for a in node.names if a.name == "import_module"
            ]
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
    composition root (lgo/bootstrap/container.py) passes each part what it needs."""
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
        "from importlib import import_module",
        "import_module(lgo.services.x_part)",
        "__import__(<computed>)",
    ]


# -- cycles -----------------------------------------------------------------------------------

PACKAGES = {"lgo": ROOT / "lgo", "drivers": ROOT / "drivers", "hwsim": ROOT / "hw-sim" / "hwsim"}


def _module_name(package: str, folder: Path, path: Path) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_imports(path: Path, known: set[str]) -> set[str]:
    """Every import of the file, at any depth (a function-level import still makes a cycle);
    ``from a import b`` counts as ``a.b`` when b is a module. TYPE_CHECKING imports are left out:
    they bind no module at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for child in node.body for n in ast.walk(child))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in known else node.module)
    return {name for name in names if name in known}


def _import_graph() -> dict[str, set[str]]:
    files = {
        _module_name(package, folder, path): path
        for package, folder in PACKAGES.items()
        for path in folder.rglob("*.py")
        if "build" not in path.relative_to(folder).parts
    }
    known = set(files)
    return {name: _all_imports(path, known) - {name} for name, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_import_graph()) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_module_shadows_the_standard_library() -> None:
    import sys

    shadowing = [
        name
        for name in _import_graph()
        if name.rsplit(".", 1)[-1] in sys.stdlib_module_names and name.count(".") >= 1
    ]
    assert shadowing == []
