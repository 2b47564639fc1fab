"""'template-data' against genforge's contract, through genforge.testing and the genforge CLI."""

from genforge.testing import check_dataset_plugin


def test_template_data_keeps_the_genforge_contract():
    report = check_dataset_plugin("template-data")
    assert report.steps


def test_a_builtin_model_trains_on_template_data(genforge_cli, tmp_path):
    genforge_cli("train", "--model", "dcgan", "--dataset", "template-data", "--steps", "2", "--image-size", "16",
                 "--batch-size", "16", "-o", "g_width=8", "-o", "d_width=8", "--no-progress", "--out", tmp_path / "run")
    assert (tmp_path / "run" / "samples.png").exists()
