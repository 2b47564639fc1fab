"""scikit-learn's bundled handwritten digits: 1,797 8x8 images, 10 classes, no network.

Fixed split: every fifth image (index % 5 == 0) is the test split (360 images), the
other 1,437 are train. Pixel values 0..16 are scaled to 0..255, then resized.
"""

import numpy as np
import torch

from genforge.core.data import DataInfo, ImageTensorDataset, check_split, images_from_array


def load(split="train", image_size=32, channels=None, data_dir=None, download=False, seed=0):
    from sklearn.datasets import load_digits  # lazy: scikit-learn takes about 0.5 s to import

    check_split(split)
    digits = load_digits()
    images = np.clip(digits.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    test = np.arange(len(images)) % 5 == 0
    keep = test if split == "test" else ~test
    tensor = images_from_array(images[keep], image_size, channels)
    labels = torch.from_numpy(digits.target[keep].astype(np.int64))
    info = DataInfo("digits", tensor.shape[1], image_size, image_size, 10, tuple(str(i) for i in range(10)),
                    {"train": int((~test).sum()), "test": int(test.sum())})
    return ImageTensorDataset(tensor, labels), info
