"""genforge plugin: registers the `wgan-gp` model. Imported by `genforge --help`: imports nothing heavy."""

from genforge import ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec("wgan-gp", "genforge_wgan_gp.model:WGANGP",
                       "WGAN-GP (Gulrajani et al. 2017): Wasserstein critic with gradient penalty"))
