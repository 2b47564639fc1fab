"""genforge plugin: registers the `wgan-gp` model. Imported by `genforge --help`: imports nothing heavy."""

from genforge import hookimpl
from genforge.core.specs import ModelSpec


@hookimpl
def register_models(register):
    register(ModelSpec("wgan-gp", "genforge_wgan_gp.model:WGANGP",
                       "WGAN-GP (Gulrajani et al. 2017): Wasserstein critic with gradient penalty"))
