"""'template-gan' against genforge's contract, through genforge.testing and the genforge CLI."""

from genforge.testing import check_model_plugin


def test_template_gan_keeps_the_genforge_contract(genforge_cache):
    report = check_model_plugin("template-gan", model_options={"hidden": 32})
    assert report.steps


def test_template_gan_is_listed(genforge_cli):
    assert "template-gan" in genforge_cli("models").stdout
