"""The package layout is the architecture: core stands alone, the two halves stand on it and not on each other."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hypersiren"


def imported_modules(path: Path) -> set[str]:
    """Every hypersiren module a file imports, at the top or inside functions."""
    return _imports(ast.parse(path.read_text()))


def _imports(tree: ast.AST) -> set[str]:
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hypersiren"):
            modules |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names if alias.name.startswith("hypersiren")}
    return modules


@pytest.mark.parametrize(
    "part, forbidden",
    [
        ("core", ("hypersiren.across", "hypersiren.single", "hypersiren.cli", "hypersiren.figures")),
        ("across", ("hypersiren.single", "hypersiren.cli")),
        ("single", ("hypersiren.across", "hypersiren.cli")),
    ],
)
def test_each_part_imports_only_what_lies_beneath_it(part, forbidden):
    files = sorted((PACKAGE / part).glob("*.py"))
    assert len(files) > 3
    for path in files:
        wrong = sorted(module for module in imported_modules(path) if module.startswith(forbidden))
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}"


def test_the_check_sees_imports():
    assert "hypersiren.core.render" in imported_modules(PACKAGE / "core" / "siren.py")


def runtime_imports(path: Path) -> set[str]:
    """The hypersiren modules (files) that importing ``path`` or calling its functions imports: an import under
    ``if TYPE_CHECKING:`` only names a type for annotations and never runs."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            node.body = []
    return {module for module in _imports(tree) if module_path(module) is not None}


def module_path(module: str) -> Path | None:
    """The file of a hypersiren module (a package's ``__init__.py``), None for a name imported from one."""
    base = PACKAGE.parent.joinpath(*module.split("."))
    return next((path for path in (base.with_suffix(".py"), base / "__init__.py") if path.is_file()), None)


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` (module -> the modules it imports) as ``[a, b, ..., a]``, None if there is none."""
    finished: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in finished:
            return None
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported, path + [module])
            if cycle:
                return cycle
        finished.add(module)
        return None

    return next((cycle for module in sorted(graph) if (cycle := visit(module, []))), None)


def test_no_module_imports_itself_through_others():
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = runtime_imports(path) - {name}
    assert len(graph) > 20
    cycle = import_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle_and_a_lazy_import():
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert "hypersiren.across.memory" in runtime_imports(PACKAGE / "across" / "images.py")  # from package import module
    assert "hypersiren.across.model" not in runtime_imports(PACKAGE / "across" / "memory.py")  # TYPE_CHECKING


def test_every_error_type_lives_in_one_leaf_module():
    """Programs catch ``hypersiren.errors``' types to print one line; defining one elsewhere would slip past them,
    and the module imports nothing, so any module can raise them."""
    assert not imported_modules(PACKAGE / "errors.py")
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        defined = [
            node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name.endswith("Error")
        ]
        assert path.name == "errors.py" or not defined, f"{path.relative_to(PACKAGE)} defines {defined}"
