"""The layout stays as ``docs/architecture.md`` draws it (issue 11).

* the import contracts in ``pyproject.toml`` (``[tool.importlinter]``) hold: layers from
  the CLI down to the configuration, product code never imports the simulator, the board
  link knows no policy, the dashboard reads only MQTT;
* ``lint-imports`` can fail: a small package that breaks a contract is reported broken;
* no import cycle between files (strongly connected components of the module graph,
  ``TYPE_CHECKING`` imports included: a cycle that only the type checker sees still means
  two files that cannot be read apart);
* no file of the product packages is longer than ``MAX_LINES``: a room read in one sitting.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hydrotherm", "firmware_bridge", "sim", "controller", "dashboard")
MAX_LINES = 800


def _lint_imports() -> str:
    return shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")


def test_import_contracts_hold() -> None:
    res = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout and " kept" in res.stdout, res.stdout


def test_a_broken_contract_is_reported(tmp_path: Path) -> None:
    """The same tool on a two-module package where the 'product' imports the 'simulator'."""
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "simulator.py").write_text("X = 1\n")
    (pkg / "product.py").write_text("from toy.simulator import X\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_package = toy\n\n"
        "[importlinter:contract:nosim]\nname = product never imports the simulator\n"
        "type = forbidden\nsource_modules = toy.product\nforbidden_modules = toy.simulator\n")
    res = subprocess.run([_lint_imports(), "--no-cache"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": str(tmp_path),
                                                      "PATH": "/usr/bin:/bin"})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "BROKEN" in res.stdout and "toy.product -> toy.simulator" in res.stdout, res.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    succ = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            nexts = succ.get(node, [])
            if i < len(nexts):
                work.append((node, i + 1))
                nxt = nexts[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def test_no_import_cycles_between_files() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "loop"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from loop import b\n")
    (pkg / "b.py").write_text("from loop import a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("loop", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert _cycles(graph) == [["loop.a", "loop.b"]]


def test_no_product_file_longer_than_a_sitting() -> None:
    long = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                long[str(path.relative_to(ROOT))] = n
    assert long == {}
