"""Registers the kit's model and dataset (tests/app/test_testing_kit.py)."""
from genforge import DatasetSpec, ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec("kit", "kit_impl:Kit", "a model for the kit's tests"))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("kit-data", "kit_data:load", "a dataset for the kit's tests"))
