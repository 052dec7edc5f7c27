"""The package layout is the architecture: core stands alone, the two halves stand on it and not on each other."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hypersiren"


def imported_modules(path: Path) -> set[str]:
    """Every hypersiren module a file imports, at the top or inside functions."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
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
