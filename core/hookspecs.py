"""The hooks a genforge plugin can implement. Each receives a `register` callable (or the CLI group).

How hooks evolve: a new argument is only ever added as an optional one (pluggy passes a hook
implementation only the arguments it names), so existing plugins keep working. A hook to be
removed is listed in DEPRECATED_HOOKS for one minor version first: plugins that implement it
get a DeprecationWarning when they load and `genforge plugins` shows them; then it goes.
"""

import pluggy

hookspec = pluggy.HookspecMarker("genforge")
hookimpl = pluggy.HookimplMarker("genforge")

DEPRECATED_HOOKS: dict[str, str] = {}  # hook name -> what to implement instead; none today


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
def register_loggers(register):
    """Register experiment loggers (where training results go): call register(LoggerSpec(...)) for each."""


@hookspec
def register_commands(cli):
    """Add click commands to the `genforge` command group."""
