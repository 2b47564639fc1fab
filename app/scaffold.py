"""`genforge plugins new NAME --kind model|dataset`: a plugin package that passes its own tests as written.

    genforge-NAME/
      pyproject.toml          the `genforge` entry point, dependencies
      README.md
      genforge_NAME/__init__.py   the hook (imports nothing heavy)
      genforge_NAME/model.py      (or dataset.py) the implementation, to be replaced by yours
      tests/test_plugin.py    genforge.testing's checks, and the plugin seen through the CLI

The Python files come from app/templates/, real modules (linted with the rest) written for a plugin named
template-gan (model) or template-data (dataset); the names are replaced by the new plugin's.
"""

from __future__ import annotations

import re
from pathlib import Path

from genforge import __version__
from genforge.core.errors import UserError
from genforge.core.files import check_output_dir, write_atomic

TEMPLATES = Path(__file__).parent / "templates"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "genforge-{name}"
version = "0.1.0"
description = "{description}"
requires-python = ">=3.10"
dependencies = ["genforge>={genforge_version}"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.genforge]
{name} = "{package}"

[tool.setuptools]
packages = ["{package}"]
"""

README = """\
# genforge-{name}

A genforge {kind} plugin: {description}.

```
pip install -e .            # registers the `{name}` {kind} through the `genforge` entry point
genforge plugins            # lists it
python -m pytest tests      # genforge.testing's contract checks
genforge plugins check {name}
```

{usage}

Replace `{package}/{module}.py` with your {kind}; the contract it must keep is in genforge's
plugin guide (docs/plugins.md), and `tests/test_plugin.py` checks it.
"""

KINDS = {
    "model": {"module": "model", "template": "template-gan", "class": "TemplateGan",
              "description": "{name}: a model plugin, today a small fully connected GAN to replace with yours",
              "usage": "genforge train --model {name} --dataset digits --steps 500 --out runs/{name}"},
    "dataset": {"module": "dataset", "template": "template-data", "class": "TemplateData",
                "description": "{name}: a dataset plugin, today procedural bars in 2 classes to replace with yours",
                "usage": "genforge datasets show {name} --out preview.png\n"
                         "genforge train --model cgan --dataset {name} --steps 500 --out runs/{name}"},
}


def write_plugin_package(name: str, kind: str, out: Path) -> Path:
    """Write the package for plugin `name` of `kind` into `out` (which must not exist or be empty)."""
    if not NAME_PATTERN.match(name):
        raise UserError(f"plugin name {name!r} must be lowercase letters and digits, words joined by '-' "
                        "(e.g. my-gan)")
    if kind not in KINDS:
        raise UserError(f"unknown plugin kind {kind!r}; use model or dataset")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists; choose another --out")
    template = KINDS[kind]
    ident = name.replace("-", "_")
    package = f"genforge_{ident}"
    values = {"name": name, "kind": kind, "ident": ident, "package": package, "module": template["module"],
              "cls": "".join(part.title() for part in name.split("-")),
              "description": template["description"].format(name=name), "genforge_version": __version__}
    values["usage"] = "```\n" + template["usage"].format(**values) + "\n```"
    module = template["module"]
    files = {"pyproject.toml": PYPROJECT.format(**values), "README.md": README.format(**values),
             f"{package}/__init__.py": render(f"{module}_plugin.py", template, values),
             f"{package}/{module}.py": render(f"{module}.py", template, values),
             "tests/test_plugin.py": render(f"test_{module}.py", template, values)}
    check_output_dir(out, "plugin folder")
    for relative, text in files.items():
        write_atomic(out / relative, text)
    return out


def render(file: str, template: dict, values: dict) -> str:
    """A module of app/templates/ (real, linted Python written for the plugin named template["template"]) with
    that name, its identifier, package, class and description replaced by the new plugin's."""
    text = (TEMPLATES / file).read_text()
    old = template["template"]
    old_ident = old.replace("-", "_")
    for before, after in ((f"genforge_{old_ident}", values["package"]), (f"{old}: a {values['kind']} plugin",
                          values["description"]), (old_ident, values["ident"]), (old, values["name"]),
                          (template["class"], values["cls"])):
        text = text.replace(before, after)
    return text
