"""`genforge plugins new NAME --kind model|dataset`: a plugin package that passes its own tests as written.

    genforge-NAME/
      pyproject.toml          the `genforge` entry point, dependencies
      README.md
      genforge_NAME/__init__.py   the hook (imports nothing heavy)
      genforge_NAME/model.py      (or dataset.py) the implementation, to be replaced by yours
      tests/test_plugin.py    genforge.testing's checks, and the plugin seen through the CLI
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from genforge import __version__
from genforge.core.errors import UserError
from genforge.core.files import check_output_dir, write_atomic

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

INIT_MODEL = '''\
"""genforge plugin: registers the {name!r} model. Imported by `genforge --help`: keep it light."""

from genforge import ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec("{name}", "{package}.model:{cls}", "{description}"))
'''

MODEL = '''\
"""The {name!r} model: a small fully connected GAN, a starting point to replace with yours.

The model contract (what each method takes and returns) is in genforge's docs/plugins.md.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge import GeneratorModel


@dataclass
class {cls}Config:
    latent_dim: int = 32
    hidden: int = 256
    lr: float = 2e-4

    def __post_init__(self):
        if self.latent_dim < 1 or self.hidden < 1 or not self.lr > 0:
            raise ValueError("latent_dim and hidden must be positive, lr a positive number")


class {cls}(GeneratorModel):
    Config = {cls}Config
    conditional = False
    image_sizes = None  # any size

    def __init__(self, info, config):
        super().__init__(info, config)
        shape = (info.channels, info.height, info.width)
        pixels = info.channels * info.height * info.width
        self.latent_shape = (config.latent_dim,)
        self.G = nn.Sequential(nn.Linear(config.latent_dim, config.hidden), nn.ReLU(),
                               nn.Linear(config.hidden, pixels), nn.Tanh(), nn.Unflatten(1, shape))
        self.D = nn.Sequential(nn.Flatten(), nn.Linear(pixels, config.hidden), nn.LeakyReLU(0.2),
                               nn.Linear(config.hidden, 1))

    def optimizers(self):
        betas = (0.5, 0.999)
        return {{"d": torch.optim.Adam(self.D.parameters(), lr=self.config.lr, betas=betas),
                "g": torch.optim.Adam(self.G.parameters(), lr=self.config.lr, betas=betas)}}

    def training_step(self, images, labels, ctx):
        z = ctx.randn(len(images), *self.latent_shape)
        with ctx.autocast():
            fake = self.G(z)
            d_loss = F.softplus(-self.D(images)).mean() + F.softplus(self.D(fake.detach())).mean()
        ctx.optimize("d", d_loss)
        with ctx.frozen(self.D), ctx.autocast():
            g_loss = F.softplus(-self.D(fake)).mean()
        ctx.optimize("g", g_loss)
        return {{"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}}

    def generator(self):
        return self.G
'''

TEST_MODEL = '''\
"""{name!r} against genforge's contract, through genforge.testing and the genforge CLI."""

from genforge.testing import check_model_plugin


def test_{ident}_keeps_the_genforge_contract(genforge_cache):
    report = check_model_plugin("{name}", model_options={{"hidden": 32}})
    assert report.steps


def test_{ident}_is_listed(genforge_cli):
    assert "{name}" in genforge_cli("models").stdout
'''

INIT_DATASET = '''\
"""genforge plugin: registers the {name!r} dataset. Imported by `genforge --help`: keep it light."""

from genforge import DatasetSpec, hookimpl


@hookimpl
def register_datasets(register):
    register(DatasetSpec("{name}", "{package}.dataset:load", "{description}"))
'''

DATASET = '''\
"""The {name!r} dataset: procedural bars (2 classes), a starting point to replace with yours.

The dataset contract is in genforge's docs/plugins.md: load(...) returns (dataset, DataInfo),
items are (float image in [-1, 1], int label).
"""

import torch

from genforge import DataInfo, ImageTensorDataset, check_split

CLASSES = ("horizontal", "vertical")
SPLIT_SIZES = {{"train": 512, "test": 128}}


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    check_split(split)
    n = SPLIT_SIZES[split]
    generator = torch.Generator().manual_seed(seed * 2 + (split == "test"))
    labels = torch.randint(0, len(CLASSES), (n,), generator=generator)
    width = torch.randint(2, max(3, image_size // 4), (n, 1, 1), generator=generator)
    rows = torch.arange(image_size).view(1, image_size, 1)
    bars = (rows // width % 2).expand(n, image_size, image_size).clone()
    bars[labels == 1] = bars[labels == 1].transpose(1, 2)
    images = (bars * 255).to(torch.uint8)[:, None].repeat(1, channels or 1, 1, 1)
    info = DataInfo("{name}", channels or 1, image_size, image_size, len(CLASSES), CLASSES, dict(SPLIT_SIZES))
    return ImageTensorDataset(images, labels), info
'''

TEST_DATASET = '''\
"""{name!r} against genforge's contract, through genforge.testing and the genforge CLI."""

from genforge.testing import check_dataset_plugin


def test_{ident}_keeps_the_genforge_contract():
    report = check_dataset_plugin("{name}")
    assert report.steps


def test_a_builtin_model_trains_on_{ident}(genforge_cli, tmp_path):
    genforge_cli("train", "--model", "dcgan", "--dataset", "{name}", "--steps", "2", "--image-size", "16",
                 "--batch-size", "16", "-o", "g_width=8", "-o", "d_width=8", "--no-progress", "--out", tmp_path / "run")
    assert (tmp_path / "run" / "samples.png").exists()
'''

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
    "model": {"module": "model", "init": INIT_MODEL, "body": MODEL, "test": TEST_MODEL,
              "description": "{name}: a model plugin, today a small fully connected GAN to replace with yours",
              "usage": "genforge train --model {name} --dataset digits --steps 500 --out runs/{name}"},
    "dataset": {"module": "dataset", "init": INIT_DATASET, "body": DATASET, "test": TEST_DATASET,
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
    files = {
        "pyproject.toml": PYPROJECT, "README.md": README, f"{package}/__init__.py": template["init"],
        f"{package}/{template['module']}.py": template["body"], "tests/test_plugin.py": template["test"],
    }
    check_output_dir(out, "plugin folder")
    for relative, text in files.items():
        write_atomic(out / relative, textwrap.dedent(text).format(**values))
    return out
