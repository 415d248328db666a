"""Tests for leafnet.datasets.leaves: the folder layout, determinism and argument checks of generate."""

from __future__ import annotations

import pytest
from PIL import Image

from leafnet.datasets import SPECIES, generate


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_generate_layout_counts_size_and_mode(tmp_path):
    counts = generate(tmp_path, classes=3, per_class=4, size=32, seed=1)
    assert counts == {SPECIES[0]: 4, SPECIES[1]: 4, SPECIES[2]: 4}
    assert list(counts) == list(SPECIES[:3])
    expected = sorted(f"{s}/{s}_{i:04d}.png" for s in SPECIES[:3] for i in range(4))
    assert _files(tmp_path) == expected  # no temporary files left behind either
    for rel in expected:
        with Image.open(tmp_path / rel) as img:
            assert img.format == "PNG"
            assert img.mode == "RGB"
            assert img.size == (32, 32)


def test_generate_jpg_and_progress(tmp_path):
    calls = []
    generate(tmp_path, classes=2, per_class=3, size=24, image_format="jpg", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 6) for i in range(1, 7)]
    files = _files(tmp_path)
    assert len(files) == 6 and all(f.endswith(".jpg") for f in files)
    with Image.open(tmp_path / files[0]) as img:
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == (24, 24)


def test_generate_is_byte_identical_for_same_arguments(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, classes=2, per_class=3, size=40, seed=7, disease=0.5)
    generate(b, classes=2, per_class=3, size=40, seed=7, disease=0.5)
    files = _files(a)
    assert files == _files(b) and len(files) == 6
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_smaller_per_class_is_a_prefix_and_seed_changes_images(tmp_path):
    small, big, other = tmp_path / "small", tmp_path / "big", tmp_path / "other"
    generate(small, classes=2, per_class=2, size=32, seed=3)
    generate(big, classes=2, per_class=5, size=32, seed=3)
    generate(other, classes=2, per_class=2, size=32, seed=4)
    for rel in _files(small):
        assert (small / rel).read_bytes() == (big / rel).read_bytes(), rel
        assert (small / rel).read_bytes() != (other / rel).read_bytes(), rel
    assert len(_files(big)) == 10


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"classes": 20}, "classes"),
        ({"classes": 1}, "classes"),
        ({"classes": 2.5}, "classes"),
        ({"per_class": 0}, "per_class"),
        ({"size": 8}, "size"),
        ({"seed": -1}, "seed"),
        ({"disease": 1.5}, "disease"),
        ({"image_format": "gif"}, "image_format"),
        ({"progress": 3}, "progress"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError) as info:
        generate(tmp_path, **{"classes": 2, "per_class": 1, "size": 16, **kwargs})
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{name} must be")
    key, value = next(iter(kwargs.items()))
    assert f"received {key}={value!r}" in msg
    assert _files(tmp_path) == []


def test_classes_message_names_allowed_range(tmp_path):
    with pytest.raises(ValueError, match=r"^classes must be an integer between 2 and 14; received classes=20$"):
        generate(tmp_path, classes=20)
