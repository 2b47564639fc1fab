"""genforge plugin: registers the 'template-data' dataset. Imported by `genforge --help`: keep it light."""

from genforge import DatasetSpec, hookimpl


@hookimpl
def register_datasets(register):
    register(DatasetSpec("template-data", "genforge_template_data.dataset:load", "template-data: a dataset plugin"))
