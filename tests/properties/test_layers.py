"""The package's layers stay as designed: each imports only the layers it may, the kernel's wings import each
other in one direction, and no module imports in a cycle.

    front door   the package root (genforge/__init__.py): its lazy table names anything; every layer may import it
    application  app/, genforge.testing, genforge.pytest_plugin, __main__   may import anything
    benchmarks   benchmarks/ (the library; scripts/ stands apart)  kernel, exporters
    plugins      plugins/                                           kernel
    exporters    exporters/                                         kernel, but no evaluation (no metric)
    kernel       core/                                              kernel only, and no click

The kernel's wings, in the only order they may import each other (and the rest of core/, their base):
training -> evaluation -> runtime -> runs (core/training/, core/evaluation/, core/runtime/, core/runs/).

Every import counts, at module top or inside a function, and so does a string that names a genforge module
(a lazy table, an importlib call), so neither laziness nor indirection can hide a violation;
STRING_IMPORTS_ALLOWED lists the few strings that are meant to reach across, each with its reason.
"""

import ast
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("core", "plugins", "exporters", "benchmarks", "app")
ROOT_MODULES = ("__init__.py", "__main__.py", "testing.py", "pytest_plugin.py")
MAY_IMPORT = {
    "kernel": {"kernel", "front door"},
    "exporters": {"kernel", "exporters", "front door"},
    "plugins": {"kernel", "plugins", "front door"},
    "benchmarks": {"kernel", "exporters", "benchmarks", "front door"},
    "application": {"kernel", "exporters", "plugins", "benchmarks", "application", "front door"},
    "front door": {"kernel", "exporters", "plugins", "benchmarks", "application", "front door"},
}
WINGS = ("core.training", "core.evaluation", "core.runtime", "core.runs")  # the order they may import in
STRING_IMPORTS_ALLOWED = {
    ("genforge.core.registry", "genforge.plugins.builtin"):
        "the built-in plugins are found by name and register through the same hooks as a third party's",
    ("genforge.core.precision", "genforge.exporters.convert"):
        "a precision's row names its ONNX converter, loaded only by the exporter",
}
MUST_NOT_IMPORT = {  # layer -> module prefixes it never imports, genforge's or third-party
    "kernel": ("click",),
    "exporters": ("genforge.core.evaluation", "torchmetrics"),
}


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    name = "genforge." + ".".join(parts)
    return name.removesuffix(".__init__") if name != "genforge.__init__" else "genforge"


def layer(module: str) -> str:
    if module == "genforge":
        return "front door"
    if module.startswith("genforge.app") or module in ("genforge.testing", "genforge.pytest_plugin",
                                                       "genforge.__main__"):
        return "application"
    for folder in ("exporters", "plugins", "benchmarks"):
        if module.startswith(f"genforge.{folder}"):
            return folder
    return "kernel"


def package_files(root: Path) -> list[Path]:
    files = [root / name for name in ROOT_MODULES if (root / name).exists()]
    for folder in PACKAGE_DIRS:
        files += sorted(f for f in (root / folder).rglob("*.py") if "scripts" not in f.relative_to(root).parts)
    return files


def imported_names(path: Path, modules: set[str], strings: bool = True) -> set[str]:
    """Every module `path` imports, genforge's and third-party (`from genforge.x import name` counts as
    genforge.x.name when that is a module, else genforge.x), and with `strings` every genforge module a
    string constant names ("genforge.x.y" or "genforge.x.y:attribute")."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            named = node.value.split(":")[0]
            if named in modules and named != "genforge":
                found.add(named)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                      for alias in node.names}
    return found


def import_graph(root: Path, third_party: bool = False, strings: bool = True) -> dict[str, set[str]]:
    files = package_files(root)
    modules = {module_name(root, f) for f in files}
    graph = {}
    for f in files:
        module = module_name(root, f)
        graph[module] = {m for m in imported_names(f, modules, strings) if third_party or m in modules}
        graph[module] -= {target for (source, target) in STRING_IMPORTS_ALLOWED if source == module}
    return graph


def layer_violations(root: Path) -> list[str]:
    found = [f"{module} ({layer(module)}) imports {target} ({layer(target)})"
             for module, targets in import_graph(root).items() for target in targets
             if layer(target) not in MAY_IMPORT[layer(module)]]
    found += [f"{module} ({layer(module)}) imports {target}"
              for module, targets in import_graph(root, third_party=True).items() for target in targets
              if any(target == p or target.startswith(p + ".") for p in MUST_NOT_IMPORT.get(layer(module), ()))]
    return sorted(found)


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


def wing(module: str) -> str | None:
    return next((w for w in WINGS if module.startswith(f"genforge.{w}")), None)


def wing_violations(root: Path) -> list[str]:
    """Imports from a wing to one before it in WINGS (a wing importing back), which would close a cycle
    between wings."""
    return sorted(f"{module} ({wing(module)}) imports {target} ({wing(target)})"
                  for module, targets in import_graph(root).items() for target in targets
                  if wing(module) and wing(target) and WINGS.index(wing(target)) < WINGS.index(wing(module)))


def test_layers_hold():
    assert layer_violations(REPO) == []


def test_no_import_cycles():
    assert import_cycles(REPO) == []


def test_the_kernels_wings_import_in_one_direction():
    assert wing_violations(REPO) == []


def planted_copy(tmp_path) -> Path:
    copy = tmp_path / "genforge"
    copy.mkdir()
    for name in ROOT_MODULES:
        shutil.copy(REPO / name, copy / name)
    for folder in PACKAGE_DIRS:
        shutil.copytree(REPO / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    return copy


def plant(path: Path, code: str) -> None:
    path.write_text(path.read_text() + f"\n\ndef _planted():\n    {code}\n")


def test_the_check_catches_each_kind_of_violation(tmp_path):
    copy = planted_copy(tmp_path)
    plant(copy / "core" / "model.py", "from genforge.app.cli import cli")
    plant(copy / "core" / "runs" / "config.py", "import click")
    plant(copy / "exporters" / "onnx.py", "from genforge.core.evaluation.metrics import frechet_distance")
    plant(copy / "benchmarks" / "measure.py", "from genforge.plugins.backends import TorchBackend")
    assert layer_violations(copy) == [
        "genforge.benchmarks.measure (benchmarks) imports genforge.plugins.backends (plugins)",
        "genforge.core.model (kernel) imports genforge.app.cli (application)",
        "genforge.core.runs.config (kernel) imports click",
        "genforge.exporters.onnx (exporters) imports genforge.core.evaluation.metrics",
    ]


def test_the_check_catches_a_string_import_and_a_wing_importing_back(tmp_path):
    copy = planted_copy(tmp_path)
    plant(copy / "core" / "model.py", 'importlib.import_module("genforge.app.api")')
    plant(copy / "core" / "runs" / "run_dir.py", "from genforge.core.evaluation.scoring import evaluate_run")
    assert layer_violations(copy) == ["genforge.core.model (kernel) imports genforge.app.api (application)"]
    assert wing_violations(copy) == [
        "genforge.core.runs.run_dir (core.runs) imports genforge.core.evaluation.scoring (core.evaluation)"]


def test_the_check_catches_a_cycle(tmp_path):
    copy = planted_copy(tmp_path)
    inputs = copy / "core" / "inputs.py"
    inputs.write_text(inputs.read_text() + "\nimport genforge.core.model\n")
    assert any("genforge.core.inputs" in cycle and "genforge.core.model" in cycle for cycle in import_cycles(copy))


def test_no_module_is_over_400_lines():
    long = [f"{path.relative_to(REPO)}: {n}" for path in package_files(REPO)
            if (n := len(path.read_text().splitlines())) > 400]
    assert long == []


def test_trainer_fit_reads_as_the_loop_alone():
    tree = ast.parse((REPO / "core" / "training" / "trainer.py").read_text())
    fit = next(node for cls in tree.body if isinstance(cls, ast.ClassDef) and cls.name == "Trainer"
               for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == "fit")
    assert fit.end_lineno - fit.lineno + 1 <= 60


def test_readme_layout_names_every_module():
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("\n## ")] if "\n## " in layout else layout
    for folder in ("core", "core/training", "core/evaluation", "core/runtime", "core/runs", "app", "exporters",
                   "plugins", "benchmarks", "benchmarks/scripts"):
        assert f"{folder}/" in layout, f"README's Layout does not name {folder}/"
        for path in sorted((REPO / folder).glob("*.py")):
            if path.name != "__init__.py":
                assert path.name in layout, f"README's Layout does not name {folder}/{path.name}"
    for name in ("testing.py", "pytest_plugin.py", "sample_plugins/", "helpers.py"):
        assert name in layout, name
