"""The project's import graph: layered by import-linter (pyproject.toml), and no import of the
project's own modules tucked inside a function, where it would hide a cycle from the linter's
reader and from a newcomer. AppConfig.ready() is the exception Django asks for: receivers and
schedules need the models loaded."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "frontservice",
    "jobs",
    "orchestration",
    "webhooks",
    "refservices",
    "frontservice_cli",
    "launcher",
)
ALLOWED = {"ready"}


def _imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return []


def _imports_inside_functions(path: Path) -> list[str]:
    found = []
    for function in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if function.name in ALLOWED:
            continue
        for node in ast.walk(function):
            for module in _imported_modules(node):
                if module.split(".")[0] in PACKAGES:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {module}")
    return found


def test_no_module_of_the_project_is_imported_inside_a_function():
    sources = [
        path
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "migrations" not in path.parts
    ]

    found = [line for path in sources for line in _imports_inside_functions(path)]

    assert sources and found == []


def test_the_layers_contracts_are_kept():
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
