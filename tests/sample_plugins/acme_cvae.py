"""Registers the conditional VAE (tests/core/test_contract.py)."""
from genforge import ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec("cvae", "acme_cvae_impl:CVAE", "a third-party conditional VAE"))
