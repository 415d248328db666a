import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from leafnet.data.pipeline import ImageSet, choose_cache, decode_image, epoch_order, load_image


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(11):
        arr = (rng.random((30 + i, 25, 3)) * 255).astype("uint8")
        p = tmp_path / f"{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
        labels.append(i % 3)
    return paths, labels


def batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_cache_modes_give_identical_batches(files, tmp_path):
    paths, labels = files
    order = epoch_order(len(paths), seed=1, epoch=2)
    results = {}
    for mode in ("memory", "disk", "none"):
        s = ImageSet(paths, labels, 3, 16)
        assert s.cache(mode, tmp_path / "cache") == mode
        ds = s.dataset(4, order)
        # tf.data's autotuning model is off: freeing its iterator stalled each fit (pipeline.prefetched).
        assert ds.options().autotune.enabled is False
        results[mode] = batches(ds)
    for mode in ("disk", "none"):
        np.testing.assert_array_equal(results[mode][0], results["memory"][0])
        np.testing.assert_array_equal(results[mode][1], results["memory"][1])
    x, y = results["memory"]
    assert x.shape == (11, 16, 16, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 1      # 0..255, not 0..1
    np.testing.assert_array_equal(y.argmax(1), np.asarray(labels)[order])
    # The disk cache is reused (same fingerprint) rather than rewritten.
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1


def test_batches_match_a_reference_decode(files):
    paths, labels = files
    s = ImageSet(paths, labels, 3, 16)
    s.cache("memory")
    x, _ = batches(s.dataset(5))
    ref = Image.open(paths[3]).convert("RGB")
    ref = tf.image.resize(np.asarray(ref), (16, 16), antialias=True).numpy()
    np.testing.assert_allclose(x[3], np.round(ref), atol=1.0)


def test_epoch_order_depends_only_on_seed_and_epoch():
    a = epoch_order(100, 5, 3)
    assert (a == epoch_order(100, 5, 3)).all()
    assert sorted(a) == list(range(100))
    assert not (a == epoch_order(100, 5, 4)).all()
    assert not (a == epoch_order(100, 6, 3)).all()


def test_auto_cache_uses_disk_for_large_sets():
    assert choose_cache("auto", 100, 64) == "memory"
    assert choose_cache("auto", 10**9, 512) == "disk"
    assert choose_cache("none", 1, 1) == "none"


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_every_colour_mode_becomes_rgb(tmp_path, mode):
    arr = np.zeros((8, 8, 3), np.uint8)
    arr[..., 0] = 200
    im = Image.fromarray(arr).convert(mode)
    p = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    im.save(p)
    out = load_image(tf.constant(str(p)), 8).numpy()
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    expected = np.asarray(im.convert("RGB"), dtype=float)
    np.testing.assert_allclose(out, expected, atol=3)


def test_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "a.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    out = decode_image(tf.io.read_file(str(p))).numpy()
    assert out.shape == (6, 6, 3)
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50
