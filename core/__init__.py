"""genforge.core: hookspecs, registry, specs, data, trainer, checkpoints and the CLI."""
