"""Registers the tiny model and the plain-Dataset digits (tests/core/test_contract.py)."""
from genforge import DatasetSpec, ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec("tiny", "acme_impl:Tiny", "a tiny third-party model"))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("acme-digits", "acme_data:load", "digits as a plain Dataset"))
