"""`genforge plugins`: list plugins, check one against the contract, or start a new one from a template.

Listing imports no torch; the checks and the scaffold are imported inside their commands (see app/cli.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from genforge.app.console import print_table
from genforge.core.errors import UserError
from genforge.core.options import parse_model_options
from genforge.core.registry import get_registry


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--check", is_flag=True,
              help="Also import every implementation and check model classes against the contract (imports torch).")
@click.pass_context
def plugins(ctx, as_json, check):
    """List loaded plugins (built-in and installed), what they register, and their problems.

    \b
    genforge plugins check NAME             run genforge.testing's checks on a model or dataset plugin
    genforge plugins new NAME --kind model  write a plugin package that passes its own tests
    """
    if ctx.invoked_subcommand is not None:
        return
    registry = get_registry()
    registry.check_references()
    if check:
        from genforge.core.contract import check_implementations  # lazy: imports torch; listing must not

        check_implementations(registry)
    infos = [info.as_dict() for info in registry.plugins.values()]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    rows = []
    for info in infos:
        registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in info["registered"].items())
        status = "; ".join(info["errors"] + [f"deprecated {d}" for d in info["deprecated"]]) or "ok"
        rows.append([info["name"], info["version"], "built-in" if info["builtin"] else info["distribution"],
                     ", ".join(info["hooks"]), registered, status])
    print_table("plugins", ["name", "version", "from", "hooks", "registers", "status"], rows)
    failed = [info["name"] for info in infos if info["errors"]]
    if check and failed:
        click.echo(f"Error: {len(failed)} plugin(s) failed to load or register: {', '.join(failed)}", err=True)
        sys.exit(1)


@plugins.command("check")
@click.argument("name")
@click.option("--dataset", default="digits", show_default=True, help="Model checks: the dataset to train on.")
@click.option("--image-size", type=int, help="Image size (default: 16, or the model's smallest).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Dataset checks: the folder of its files.")
@click.option("-o", "--model-option", "model_option", multiple=True, metavar="KEY=VALUE",
              help="Model checks: a model option (small widths keep the check fast).")
def check_command(name, dataset, image_size, data_dir, model_option):
    """Check model or dataset plugin NAME as genforge.testing does: build, train twice, sample, export, evaluate,
    benchmark (models); every item against its DataInfo, the bad-path error (datasets). Exit 1 on a failed check."""
    from genforge.testing import PluginCheckFailed, check_dataset_plugin, check_model_plugin  # lazy: imports torch

    registry = get_registry()
    try:
        if name in registry.specs("models"):
            report = check_model_plugin(name, dataset, image_size, parse_model_options(model_option))
        elif name in registry.specs("datasets"):
            report = check_dataset_plugin(name, image_size or 16, data_dir)
        else:
            raise UserError(f"no model or dataset plugin named {name!r}; see `genforge models` and "
                            "`genforge datasets`")
    except PluginCheckFailed as exc:
        click.echo(f"FAILED {name}: {exc}", err=True)
        raise SystemExit(1) from None
    for step in report.steps:
        click.echo(f"ok  {step}")
    click.echo(f"{report.plugin}: every check passed")


@plugins.command("new")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(["model", "dataset"]), help="What the plugin adds.")
@click.option("--out", type=click.Path(path_type=Path), help="Folder to write (default ./genforge-NAME).")
def new_command(name, kind, out):
    """Write a plugin package for NAME: pyproject with the entry point, one module, tests, a README."""
    from genforge.app.scaffold import write_plugin_package

    folder = write_plugin_package(name, kind, out or Path(f"genforge-{name}"))
    click.echo(f"wrote {folder}; next: pip install -e {folder} && python -m pytest {folder / 'tests'}")
