"""genforge plugin: registers the 'template-gan' model. Imported by `genforge --help`: keep it light."""

from genforge import ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec("template-gan", "genforge_template_gan.model:TemplateGan", "template-gan: a model plugin"))
