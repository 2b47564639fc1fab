"""Registers unit_impl's model (installed by tests/properties/test_trust.py)."""

from genforge import ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec("unit", "unit_impl:Unit", "[0, 1] images"))
