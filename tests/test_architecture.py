"""The package layout is the architecture: layers, one idea per file, library apart from commands.

docs/architecture.md states the rules; these tests read the source (``ast``, nothing is imported)
and fail when a change breaks one of them.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pg2_tf"

# Which layer packages each package of pg2_tf may import (besides itself).
ALLOWED = {
    "core": set(),
    "records": {"core"},
    "networks": {"core"},
    "people": {"core", "records"},
    "training": {"core", "records", "networks"},
    "scoring": {"core", "records"},
    "serving": {"core", "networks"},
    "apps": {"core", "records", "networks", "people", "serving"},
}
MAX_LINES = 450
# What only the command lines at the top may import.
COMMAND_LINE_ONLY = ("absl.flags", "pg2_tf.cli", "pg2_tf.flags")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(*folders: str) -> dict[str, Path]:
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules("pg2_tf", "data_prep", "benchmarks")
LIBRARY = {name: path for name, path in MODULES.items() if name.count(".") == 2}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function: ``from a import b`` gives
    ``a.b`` where that is a module of this project, else ``a``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                names.add(child if child in MODULES else node.module)
    return names


IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    """The layer package of a pg2_tf module (``pg2_tf.people.finder`` -> ``people``), None for
    the top-level command modules and the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "pg2_tf" else None


def test_every_module_of_pg2_tf_is_in_a_layer_package_or_a_command_line():
    for name in MODULES:
        parts = name.split(".")
        if parts[0] == "pg2_tf" and len(parts) == 3:
            assert parts[1] in ALLOWED, f"{name}: pg2_tf/{parts[1]}/ is not a layer in ALLOWED"
        assert len(parts) <= 3, f"{name}: one level of sub-packages only"


@pytest.mark.parametrize("module", sorted(LIBRARY))
def test_a_layer_imports_only_the_layers_below_it(module):
    layer = _layer(module)
    for target in IMPORTS[module]:
        if not target.startswith("pg2_tf."):
            continue
        target_layer = _layer(target) or _layer(target + ".x")
        assert target_layer is not None, f"{module} imports the command-line module {target}"
        assert target_layer in ALLOWED[layer] | {layer}, (
            f"{module} ({layer}) imports {target} ({target_layer}); {layer} may import "
            f"{sorted(ALLOWED[layer]) or 'nothing else of pg2_tf'}"
        )


@pytest.mark.parametrize("module", sorted(LIBRARY))
def test_library_modules_read_no_flags(module):
    for target in IMPORTS[module]:
        assert not target.startswith(COMMAND_LINE_ONLY), (
            f"{module} imports {target}: flags are read by the command lines at the top, which "
            "pass plain values down"
        )


def test_pg2_tf_imports_nothing_from_data_prep_or_benchmarks():
    for module, targets in IMPORTS.items():
        if module.startswith("pg2_tf"):
            wrong = sorted(t for t in targets if t.split(".")[0] in ("data_prep", "benchmarks"))
            assert not wrong, f"{module} imports {wrong}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_tarjan_finds_a_cycle_of_three_and_not_a_chain():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles():
    graph = {
        module: {target for target in targets if target in MODULES and target != module}
        for module, targets in IMPORTS.items()
    }
    # A package's __init__ is imported by each of its modules; it imports none of them here.
    assert _cycles(graph) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_holds_at_most_450_lines(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(ROOT)}: {lines} lines (split it)"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("benchmarks")))
def test_each_module_says_what_it_is(module):
    tree = ast.parse(MODULES[module].read_text())
    assert ast.get_docstring(tree), f"{MODULES[module].relative_to(ROOT)} has no module docstring"


def _returns_a_value(function: ast.FunctionDef) -> bool:
    if function.returns is not None:
        return not (isinstance(function.returns, ast.Constant) and function.returns.value is None)
    own = [n for n in ast.walk(function) if isinstance(n, ast.Return | ast.Yield)]
    return any(getattr(n, "value", None) is not None for n in own)


def _docstring_problems(path: Path) -> list[str]:
    problems = []
    for node in ast.parse(path.read_text()).body:
        if node.name.startswith("_") if hasattr(node, "name") else True:
            continue
        doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef | ast.ClassDef) else ""
        where = f"{path.name}:{node.lineno} {node.name}"
        if isinstance(node, ast.ClassDef) and not doc:
            problems.append(f"{where}: no docstring")
        if not isinstance(node, ast.FunctionDef):
            continue
        if not doc:
            problems.append(f"{where}: no docstring")
            continue
        parameters = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        if (parameters or node.args.vararg or node.args.kwarg) and "Args:" not in doc:
            problems.append(f"{where}: no Args: section")
        if _returns_a_value(node) and not re.search(r"^(Returns|Yields):", doc, re.M):
            problems.append(f"{where}: no Returns: section")
    return problems


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith(("pg2_tf", "data_prep")))
)
def test_public_functions_have_google_style_docstrings(module):
    assert _docstring_problems(MODULES[module]) == []


def test_the_docstring_check_finds_a_missing_args_section(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('def f(x):\n    """Doubles x."""\n    return 2 * x\n')
    problems = _docstring_problems(sample)
    assert [p.split(": ", 1)[1] for p in problems] == ["no Args: section", "no Returns: section"]
