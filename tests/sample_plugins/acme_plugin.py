"""A third-party plugin registering a model and a dataset (installed by tests/core/test_registry.py)."""

from genforge import DatasetSpec, ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec("acme-gan", "acme_impl:AcmeGAN", "a third-party GAN", family="gan"))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("acme-data", "acme_impl:load", "third-party data"))
