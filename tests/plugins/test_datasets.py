"""Dataset plugins on data the tests make themselves, including every bad input."""

import gzip
import struct

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error
from PIL import Image

from genforge.core.contract import open_dataset
from genforge.core.errors import UserError


def check_images(dataset, channels, size):
    image, label = dataset[0]
    assert image.shape == (channels, size, size) and image.dtype == torch.float32
    assert -1.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert isinstance(label, int)


def test_digits_default_split_and_size():
    train, info = open_dataset("digits", "train", image_size=32)
    test, _ = open_dataset("digits", "test", image_size=32)
    assert (len(train), len(test)) == (1437, 360)
    assert info.split_sizes == {"train": 1437, "test": 360} and info.num_classes == 10
    check_images(train, 1, 32)
    assert sorted(set(train.labels.tolist())) == list(range(10))
    rgb, info3 = open_dataset("digits", "train", image_size=16, channels=3)
    check_images(rgb, 3, 16)
    assert torch.equal(rgb.images[:, 0], rgb.images[:, 2]), "grey to RGB repeats the channel"


def test_shapes_is_deterministic_by_seed():
    a, info = open_dataset("shapes", "train", image_size=24, seed=3)
    b, _ = open_dataset("shapes", "train", image_size=24, seed=3)
    c, _ = open_dataset("shapes", "train", image_size=24, seed=4)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert info.class_names == ("circle", "square", "triangle", "cross") and info.channels == 3
    grey, ginfo = open_dataset("shapes", "test", image_size=24, channels=1)
    check_images(grey, 1, 24)
    assert len(grey) == 512 and ginfo.channels == 1


def write_images(folder, n, size=(40, 30), mode="RGB", seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(folder / f"img{i:03d}.png")


def test_image_folder_with_classes(tmp_path):
    write_images(tmp_path / "cats", 12)
    write_images(tmp_path / "dogs", 12, seed=1)
    train, info = open_dataset("image-folder", "train", image_size=16, data_dir=tmp_path)
    test, _ = open_dataset("image-folder", "test", image_size=16, data_dir=tmp_path)
    assert info.class_names == ("cats", "dogs") and info.num_classes == 2
    assert len(train) + len(test) == 24 and len(test) == 2
    check_images(train, 3, 16)
    grey, ginfo = open_dataset("image-folder", "train", image_size=16, channels=1, data_dir=tmp_path)
    check_images(grey, 1, 16)


def test_image_folder_flat_is_unlabelled_and_grey_detected(tmp_path):
    write_images(tmp_path, 5, mode="L")
    dataset, info = open_dataset("image-folder", "train", image_size=8, data_dir=tmp_path)
    assert info.num_classes is None and not info.labelled and info.channels == 1
    assert dataset[0][1] == -1


def test_image_folder_skips_corrupt_files_and_reports_once(tmp_path, capsys):
    write_images(tmp_path, 4)
    (tmp_path / "broken1.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "broken2.jpg").write_bytes(b"garbage")
    dataset, _ = open_dataset("image-folder", "train", image_size=8, data_dir=tmp_path)
    assert len(dataset) == 4
    err = capsys.readouterr().err
    assert err.count("skipped 2 unreadable image(s)") == 1


@pytest.mark.parametrize("setup, fragment", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "no images"),
    (lambda p: (p.mkdir(), (p / "a.png").write_bytes(b"nope")), "none of the 1 images"),
])
def test_image_folder_bad_input(tmp_path, setup, fragment):
    folder = tmp_path / "data"
    setup(folder)
    with pytest.raises(UserError, match=fragment):
        open_dataset("image-folder", "train", image_size=8, data_dir=folder)


def write_idx(folder, stem, array, gz=False, truncate=0):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = (header + array.astype(np.uint8).tobytes())
    data = data[: len(data) - truncate] if truncate else data
    path = folder / (stem + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    write_idx(tmp_path, "t10k-images-idx3-ubyte", rng.integers(0, 255, (7, 28, 28)), gz)
    write_idx(tmp_path, "t10k-labels-idx1-ubyte", np.arange(7) % 10, gz)
    dataset, info = open_dataset("mnist", "test", image_size=32, data_dir=tmp_path)
    assert len(dataset) == 7 and info.num_classes == 10
    check_images(dataset, 1, 32)
    fashion, finfo = open_dataset("fashion-mnist", "test", image_size=28, data_dir=tmp_path)
    assert finfo.class_names[0] == "T-shirt"
    assert torch.equal(fashion.labels, torch.arange(7))


def test_mnist_bad_files(tmp_path):
    with pytest.raises(UserError, match="put train-images-idx3-ubyte and train-labels-idx1-ubyte"):
        open_dataset("mnist", "train", data_dir=tmp_path)
    write_idx(tmp_path, "train-images-idx3-ubyte", np.zeros((5, 28, 28)), truncate=100)
    write_idx(tmp_path, "train-labels-idx1-ubyte", np.zeros(5))
    with pytest.raises(UserError, match="truncated"):
        open_dataset("mnist", "train", data_dir=tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00")
    with pytest.raises(UserError, match="not an IDX file"):
        open_dataset("mnist", "train", data_dir=tmp_path)
    with pytest.raises(UserError, match="needs --data-dir"):
        open_dataset("mnist", "train")


def test_unsupported_sizes_and_channels():
    with pytest.raises(UserError, match="image size 4 is not supported"):
        open_dataset("digits", image_size=4)
    with pytest.raises(UserError, match="2 channels is not supported"):
        open_dataset("digits", channels=2)
    with pytest.raises(UserError, match="unknown split"):
        open_dataset("digits", split="validation")


def test_cifar10_needs_torchvision_or_data(tmp_path):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match=r"pip install 'genforge\[vision\]'"):
            open_dataset("cifar10", data_dir=tmp_path)
    else:
        with pytest.raises(UserError, match="cifar10"):
            open_dataset("cifar10", data_dir=tmp_path)


def test_datasets_cli_show_writes_preview(genforge_cli, tmp_path):
    out = tmp_path / "preview.png"
    result = genforge_cli("datasets", "show", "shapes", "--image-size", "16", "--out", out)
    assert "num_classes  4" in result.stdout and out.exists()
    assert Image.open(out).size[0] > 16 * 8
    listing = genforge_cli("datasets").stdout
    assert "digits" in listing and "image-folder" in listing


def test_datasets_cli_bad_input_is_one_line(genforge_cli, tmp_path):
    assert_one_line_error(genforge_cli("datasets", "show", "image-folder", "--data-dir", tmp_path / "nope", expect=2),
                          "does not exist")
    assert_one_line_error(genforge_cli("datasets", "show", "digitz", expect=2), "did you mean digits")


def test_digits_distorted_is_deterministic_and_keeps_the_digits_split():
    train, info = open_dataset("digits-distorted", "train", image_size=28)
    test, _ = open_dataset("digits-distorted", "test", image_size=28)
    again, _ = open_dataset("digits-distorted", "train", image_size=28, seed=5)
    assert (len(train), len(test)) == (7185, 1800) and info.num_classes == 10 and info.channels == 1
    assert torch.equal(train.images, again.images)
    assert not torch.equal(train.images[:1437], train.images[1437:2874]), "five different distortions per digit"
    assert torch.equal(train.labels[:1437], train.labels[1437:2874])
