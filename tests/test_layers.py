"""The package's layers stay as designed: the kernel imports nothing above it, and no module imports in a cycle.

    application  core/app/, genforge.testing, genforge.pytest_plugin   may import anything
    benchmarks   benchmarks/                                            kernel, plugins, exporters
    plugins      plugins/                                               kernel, exporters
    exporters    exporters/                                             kernel
    kernel       core/ (not core/app/), the package root                kernel only

Every import counts, at module top or inside a function, so laziness cannot hide a violation.
"""

import ast
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("core", "plugins", "exporters", "benchmarks")
ROOT_MODULES = ("__init__.py", "testing.py", "pytest_plugin.py")
MAY_IMPORT = {
    "kernel": {"kernel"},
    "exporters": {"kernel", "exporters"},
    "plugins": {"kernel", "exporters", "plugins"},
    "benchmarks": {"kernel", "exporters", "plugins", "benchmarks"},
    "application": {"kernel", "exporters", "plugins", "benchmarks", "application"},
}


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    name = "genforge." + ".".join(parts)
    return name.removesuffix(".__init__") if name != "genforge.__init__" else "genforge"


def layer(module: str) -> str:
    if module.startswith("genforge.core.app") or module in ("genforge.testing", "genforge.pytest_plugin"):
        return "application"
    for folder in ("exporters", "plugins", "benchmarks"):
        if module.startswith(f"genforge.{folder}"):
            return folder
    return "kernel"


def package_files(root: Path) -> list[Path]:
    files = [root / name for name in ROOT_MODULES if (root / name).exists()]
    for folder in PACKAGE_DIRS:
        files += sorted((root / folder).rglob("*.py"))
    return files


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The genforge modules `path` imports (`from genforge.x import name` counts as genforge.x.name when that is
    a module, else genforge.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        found |= {name for name in names if name == "genforge" or name.startswith("genforge.")}
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = package_files(root)
    modules = {module_name(root, f) for f in files}
    return {module_name(root, f): {m for m in imports_of(f, modules) if m in modules} for f in files}


def layer_violations(root: Path) -> list[str]:
    return sorted(f"{module} ({layer(module)}) imports {target} ({layer(target)})"
                  for module, targets in import_graph(root).items() for target in targets
                  if layer(target) not in MAY_IMPORT[layer(module)])


def import_cycles(root: Path) -> list[list[str]]:
    graph = import_graph(root)
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target == module or target == "genforge":
                continue
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_layers_hold():
    assert layer_violations(REPO) == []


def test_no_import_cycles():
    assert import_cycles(REPO) == []


def test_the_check_catches_a_kernel_module_importing_the_application(tmp_path):
    copy = tmp_path / "genforge"
    copy.mkdir()
    for name in ROOT_MODULES:
        shutil.copy(REPO / name, copy / name)
    for folder in PACKAGE_DIRS:
        shutil.copytree(REPO / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    model = copy / "core" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _planted():\n    from genforge.core.app.cli import cli\n")
    assert layer_violations(copy) == ["genforge.core.model (kernel) imports genforge.core.app.cli (application)"]
    inputs = copy / "core" / "inputs.py"
    inputs.write_text(inputs.read_text() + "\nimport genforge.core.model\n")
    assert any("genforge.core.inputs" in cycle and "genforge.core.model" in cycle for cycle in import_cycles(copy))


def test_readme_layout_names_every_module():
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("\n## ")] if "\n## " in layout else layout
    for folder in ("core", "core/app", "exporters", "plugins"):
        for path in sorted((REPO / folder).glob("*.py")):
            if path.name != "__init__.py":
                assert path.name in layout, f"README's Layout does not name {folder}/{path.name}"
    for name in ("measure.py", "stats.py", "rows.py", "environment.py", "suite.py", "testing.py", "pytest_plugin.py"):
        assert name in layout, name
