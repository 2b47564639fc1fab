"""The hooks a genforge plugin can implement. Each receives a `register` callable.

New hook arguments are only ever added as optional ones, so existing plugins keep working.
"""

import pluggy

hookspec = pluggy.HookspecMarker("genforge")
hookimpl = pluggy.HookimplMarker("genforge")


@hookspec
def register_models(register):
    """Register model plugins: call register(ModelSpec(...)) for each."""


@hookspec
def register_datasets(register):
    """Register dataset plugins: call register(DatasetSpec(...)) for each."""


@hookspec
def register_metrics(register):
    """Register quality metrics: call register(MetricSpec(...)) for each."""


@hookspec
def register_backends(register):
    """Register benchmark backends: call register(BackendSpec(...)) for each."""


@hookspec
def register_commands(cli):
    """Add click commands to the `genforge` command group."""
