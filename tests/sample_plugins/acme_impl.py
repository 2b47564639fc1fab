"""acme_plugin's implementation: the built-in DCGAN under another name, and the shapes dataset."""

import genforge.plugins.dcgan as dcgan

AcmeGAN = dcgan.DCGAN


def load(**kwargs):
    from genforge.plugins.shapes import load as shapes
    return shapes(**kwargs)
