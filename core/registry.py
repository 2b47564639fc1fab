"""The plugin registry: built-ins and entry-point plugins, loaded one by one in their own try.

Built-in plugins are plain modules registered through the same hooks as third-party ones.
Third-party plugins declare an entry point in the group "genforge":

    [project.entry-points.genforge]
    my_gan = "my_gan.plugin"

GENFORGE_STRICT_PLUGINS=1 makes any load error fatal; GENFORGE_LOAD_PLUGINS=a,b loads
only those external plugins (set but empty: none).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from genforge import __version__
from genforge.core import hookspecs
from genforge.core.errors import PluginError, unknown_name
from genforge.core.specs import BackendSpec, DatasetSpec, LoggerSpec, MetricSpec, ModelSpec, Spec

BUILTIN_PLUGINS = ("genforge.plugins.builtin",)
SPEC_TYPES = {"models": ModelSpec, "datasets": DatasetSpec, "metrics": MetricSpec, "backends": BackendSpec,
              "loggers": LoggerSpec}


@dataclass
class PluginInfo:
    name: str
    version: str
    distribution: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)  # deprecated hooks it implements, with what to use

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "registered": self.registered,
            "errors": self.errors,
            "deprecated": self.deprecated,
        }


def _strict() -> bool:
    return os.environ.get("GENFORGE_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


class Registry:
    def __init__(self, builtins=BUILTIN_PLUGINS, entry_points=True):
        self.pm = pluggy.PluginManager("genforge")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._order: list[tuple[str, object]] = []
        self._specs: dict[str, dict[str, Spec]] | None = None
        for module_name in builtins:
            self._load_builtin(module_name)
        if entry_points:
            self._load_entry_points()

    # -- loading -------------------------------------------------------------------------
    def _fail(self, info: PluginInfo, message: str) -> None:
        info.errors.append(message)
        if _strict():
            raise PluginError(f"plugin {info.name!r} ({info.distribution}): {message} (GENFORGE_STRICT_PLUGINS is set)")
        print(f"warning: plugin {info.name!r} failed: {message}", file=sys.stderr)

    def _register(self, info: PluginInfo, module) -> None:
        try:
            self.pm.register(module, name=info.name)
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001  a plugin's error must not break other commands
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            self._fail(info, f"{type(exc).__name__}: {exc}")
            return
        info.hooks = sorted(impl.name for impl in self.pm.get_hookcallers(module) or [])
        for hook in info.hooks:
            if hook in hookspecs.DEPRECATED_HOOKS:
                info.deprecated.append(f"{hook} (use {hookspecs.DEPRECATED_HOOKS[hook]})")
                warnings.warn(f"plugin {info.name!r} ({info.distribution}) implements {hook}, which is deprecated "
                              f"and will be removed in the next minor version; use {hookspecs.DEPRECATED_HOOKS[hook]}",
                              DeprecationWarning, stacklevel=2)
        self._order.append((info.name, module))

    def _load_builtin(self, module_name: str) -> None:
        info = PluginInfo(module_name, __version__, "genforge", builtin=True)
        self.plugins[info.name] = info
        self._register(info, importlib.import_module(module_name))

    def _load_entry_points(self) -> None:
        wanted = os.environ.get("GENFORGE_LOAD_PLUGINS")
        allow = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
        for ep in metadata.entry_points(group="genforge"):
            if allow is not None and ep.name not in allow:
                continue
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            info = PluginInfo(ep.name, version, dist, builtin=False)
            if ep.name in self.plugins:
                self._fail(info, f"a plugin named {ep.name!r} is already loaded from "
                                 f"{self.plugins[ep.name].distribution}")
                continue
            self.plugins[ep.name] = info
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001
                self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self._register(info, module)

    # -- specs ---------------------------------------------------------------------------
    def _call_each(self, hook_name: str, make_kwargs) -> None:
        """Call one hook plugin by plugin, in load order, each in its own try."""
        impls = {id(impl.plugin): impl for impl in getattr(self.pm.hook, hook_name).get_hookimpls()}
        for plugin_name, module in self._order:
            impl = impls.get(id(module))
            if impl is None:
                continue
            info = self.plugins[plugin_name]
            try:
                impl.function(**make_kwargs(info))
            except Exception as exc:  # noqa: BLE001
                self._fail(info, f"{hook_name} raised {type(exc).__name__}: {exc}")

    def _collect(self) -> dict[str, dict[str, Spec]]:
        specs: dict[str, dict[str, Spec]] = {kind: {} for kind in SPEC_TYPES}
        for kind, spec_type in SPEC_TYPES.items():
            self._call_each(
                f"register_{kind}",
                lambda info, kind=kind, spec_type=spec_type: {
                    "register": self._registrar(kind, spec_type, info, specs[kind])
                },
            )
        return specs

    def _registrar(self, kind, spec_type, info: PluginInfo, table: dict):
        def register(spec):
            if not isinstance(spec, spec_type):
                raise TypeError(f"register_{kind} expects {spec_type.__name__}, got {type(spec).__name__}")
            if spec.name in table:
                other = table[spec.name].plugin
                raise ValueError(f"{spec_type.kind} {spec.name!r} is registered by both {other} and "
                                 f"{info.distribution}")
            table[spec.name] = type(spec)(**{**spec.__dict__, "plugin": info.distribution,
                                             "plugin_version": info.version})
            info.registered.setdefault(kind, []).append(spec.name)

        return register

    def specs(self, kind: str) -> dict[str, Spec]:
        if self._specs is None:
            self._specs = self._collect()
        return self._specs[kind]

    def get(self, kind: str, name: str) -> Spec:
        table = self.specs(kind)
        if name not in table:
            raise unknown_name(SPEC_TYPES[kind].kind, name, table)
        return table[name]

    def model(self, name: str) -> ModelSpec:
        return self.get("models", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("datasets", name)

    def check_references(self) -> None:
        """Record, per plugin, implementation modules that cannot be found (without importing them)."""
        for spec in self.all_specs():
            module_name = spec.impl.partition(":")[0]
            try:
                found = importlib.util.find_spec(module_name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                self.record_problem(spec, f"{spec.kind} {spec.name!r}: module {module_name!r} not found")

    def all_specs(self) -> list[Spec]:
        return [spec for kind in SPEC_TYPES for spec in self.specs(kind).values()]

    def record_problem(self, spec: Spec, problem: str) -> None:
        """Add a problem found with one of a plugin's specs to that plugin's errors."""
        for info in self.plugins.values():
            if info.distribution == spec.plugin and problem not in info.errors:
                info.errors.append(problem)
                return

    def plugin_modules(self) -> list[str]:
        """The module names of the third-party plugins loaded (their warnings are the user's business)."""
        names = (getattr(module, "__name__", None) or getattr(module, "__module__", None)
                 for name, module in self._order if not self.plugins[name].builtin)
        return [name for name in names if isinstance(name, str)]

    def add_commands(self, cli) -> None:
        self._call_each("register_commands", lambda info: {"cli": cli})


_registry: Registry | None = None


def get_registry() -> Registry:
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def reset_registry() -> None:
    """Forget the loaded plugins (tests, or after installing a plugin in-process)."""
    global _registry
    _registry = None
