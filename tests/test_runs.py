"""``runs.Run`` as the reader of a run folder: config, image size, split rows, subsets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leafnet.errors import DataError, LeafnetError
from leafnet.runs import SPLIT_HEADER, Run, RunDir, read_split_rows, write_csv


def _run(tmp_path, rows, classes=("-1", "oak"), config="data:\n  image_size: 48\n"):
    root = tmp_path / "run"
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(config, encoding="utf-8")
    (root / "classes.json").write_text(json.dumps(list(classes)), encoding="utf-8")
    if rows is not None:
        write_csv(root / "split.csv", SPLIT_HEADER, rows)
    return Run(root)


@pytest.fixture
def images(tmp_path):
    paths = []
    for name in ("a.png", "b.png", "c.png", "d.png"):
        p = tmp_path / name
        p.write_bytes(b"x")
        paths.append(str(p))
    return paths


def test_split_rows_give_back_the_cells_as_written(tmp_path, images):
    run = _run(tmp_path, [(images[0], "-1", "train", "h0"), (images[1], "oak", "val", "h1")])
    rows = run.split_rows()
    assert [(r["path"], r["class"], r["subset"], r["sha1"]) for r in rows] == \
        [(images[0], "-1", "train", "h0"), (images[1], "oak", "val", "h1")]
    assert read_split_rows(run.dir.split) == rows
    assert "'-1" in run.dir.split.read_text(encoding="utf-8")     # escaped on disk, not in the rows


def test_no_split_csv_is_no_rows(tmp_path):
    assert _run(tmp_path, None).split_rows() == []


def test_images_of_a_subset_in_split_order(tmp_path, images):
    run = _run(tmp_path, [(images[0], "oak", "val", "h0"), (images[1], "-1", "train", "h1"),
                          (images[2], "-1", "val", "h2"), (images[3], "oak", "test", "h3")])
    assert run.images("val") == ([images[0], images[2]], [1, 0])
    assert run.images("train") == ([images[1]], [0])
    assert run.images("test") == ([images[3]], [1])


def test_images_agree_with_the_split_that_fit_resumes_on(tmp_path, images):
    from leafnet.data.prepare import read_split

    run = _run(tmp_path, [(images[i], ("oak", "-1")[i % 2], ("train", "val")[i // 2], f"h{i}") for i in range(4)])
    split = read_split(RunDir(run.root))
    for subset in ("train", "val"):
        paths, labels, _ = split.rows(subset)
        assert run.images(subset) == (paths, [int(v) for v in labels])
    np.testing.assert_array_equal(split.labels, [1, 0, 1, 0])


def test_a_class_missing_from_classes_json_is_refused(tmp_path, images):
    run = _run(tmp_path, [(images[0], "elm", "val", "h0")])
    with pytest.raises(DataError, match=r"names class\(es\) that .*classes.json lacks: 'elm'"):
        run.images("val")


def test_a_removed_file_is_refused(tmp_path, images):
    run = _run(tmp_path, [(images[0], "oak", "val", "h0"), (str(tmp_path / "gone.png"), "oak", "val", "h1")])
    with pytest.raises(DataError, match=r"1 file\(s\) of .*split.csv no longer exist \(first: .*gone.png\)"):
        run.checked_split_rows()


def test_a_csv_without_the_split_columns_is_refused(tmp_path, images):
    run = _run(tmp_path, None)
    write_csv(run.dir.split, ["path", "label"], [(images[0], "oak")])
    with pytest.raises(DataError, match="is not a leafnet split file"):
        run.images("val")


class _Model:
    def __init__(self, size):
        self.input_shape = (None, size, size, 3)


def test_image_size_from_config_then_model(tmp_path):
    assert _run(tmp_path / "a", None).image_size(_Model(99)) == 48
    assert _run(tmp_path / "b", None, config="data:\n  batch_size: 4\n").image_size(_Model(99)) == 99
    with pytest.raises(LeafnetError, match="cannot tell the image size of run"):
        _run(tmp_path / "c", None, config="data:\n  batch_size: 4\n").image_size(_Model(None))


def test_config_is_checked(tmp_path):
    assert _run(tmp_path / "a", None).config["data"]["image_size"] == 48
    with pytest.raises(LeafnetError, match="image_size"):
        _run(tmp_path / "b", None, config="data:\n  image_size: 100000\n").config
