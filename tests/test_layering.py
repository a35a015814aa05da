"""Packages import only downstream (DESIGN §2):

    dispatch.core <- maps <- telemetry <- alerts <- dispatch (domain)    depot <- dispatch (domain)

Upstream reactions go through the kernel's event bus (dispatch.core.events), never an upward
import. Every import counts, also one inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dispatch", "depot", "telemetry", "maps", "alerts")

# What each layer may import (besides itself). `dispatch` is the domain layer on top: the app
# factory, CLI, jobs list and the dispatch domain packages; `dispatch.core` is the kernel.
MAY_IMPORT = {
    "dispatch.core": set(),
    "maps": {"dispatch.core"},
    "depot": {"dispatch.core"},
    "telemetry": {"dispatch.core", "maps"},
    "alerts": {"dispatch.core", "maps", "telemetry"},
    "dispatch": {"dispatch.core", "maps", "telemetry", "alerts", "depot"},
}


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to, None for anything outside the project."""
    if module == "dispatch.core" or module.startswith("dispatch.core."):
        return "dispatch.core"
    top = module.split(".")[0]
    return top if top in PACKAGES else None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from dispatch import create_app` imports the factory, part of `dispatch`.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if layer_of(f"{base}.{alias.name}") == "dispatch.core"]
    return found


def project_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def upward_imports(files: list[Path], root: Path = ROOT) -> list[str]:
    """`file:line (layer) imports module` for every import against the layering."""
    problems = []
    for path in files:
        module = module_name(path, root)
        own = layer_of(module)
        for line, target in imported_modules(path, module):
            theirs = layer_of(target)
            if theirs is None or theirs == own:
                continue
            if theirs not in MAY_IMPORT[own]:
                problems.append(f"{path.relative_to(root)}:{line} ({own}) imports {target}")
    return problems


def test_no_module_imports_upward():
    problems = upward_imports(project_files())
    assert not problems, "upward imports:\n" + "\n".join(problems)


@pytest.mark.parametrize("where, source", [
    ("dispatch/core/x.py", "from dispatch import create_app\n"),
    ("dispatch/core/x.py", "def f():\n    import telemetry.ingest\n"),
    ("maps/x.py", "from telemetry.models import Sensor\n"),
    ("telemetry/x.py", "from ..alerts import rules\n"),
    ("depot/x.py", "import maps.geo\n"),
])
def test_the_check_catches_an_upward_import(tmp_path, where, source):
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text(source)
    assert upward_imports([path], tmp_path)


def test_the_check_lets_downward_imports_pass(tmp_path):
    path = tmp_path / "alerts" / "x.py"
    path.parent.mkdir(parents=True)
    path.write_text("from dispatch.core.db import db\nimport maps.geo\nfrom telemetry import rain\n"
                    "from . import rules\n")
    assert upward_imports([path], tmp_path) == []
