"""``leafnet explain`` and ``leafnet inversions`` on the shared tiny run."""

from __future__ import annotations

import numpy as np

from leafnet.runs import read_csv


def _val_images(run_dir, n=2):
    return [r["path"] for r in read_csv(run_dir / "split.csv") if r["subset"] == "val"][:n]


def test_explain_per_class_writes_panels_grid_blocks_and_index(shared_run, run_cli, tmp_path):
    run, run_dir = shared_run
    code, out, err = run_cli("explain", run_dir, "--per-class", "1", "--method", "gradcam",
                             "--blocks", "1,2,last", "--out", tmp_path)
    assert code == 0, err
    classes = run.classes
    rows = read_csv(tmp_path / "index.csv")
    assert len(rows) == len(classes)
    assert [r["true"] for r in rows] == classes                    # one validation image per class, in order
    assert all(r["target"] == r["predicted"] for r in rows)        # --class predicted is the default

    from leafnet.predict import predict

    preds = predict(run_dir, [r["path"] for r in rows])
    assert [p["class"] for p in preds] == [r["predicted"] for r in rows]
    np.testing.assert_allclose([p["confidence"] for p in preds], [float(r["confidence"]) for r in rows], atol=1e-5)
    assert len(list(tmp_path.glob("0*_*.png"))) == len(classes)
    assert (tmp_path / "grid.png").stat().st_size > 5000 and (tmp_path / "blocks.png").stat().st_size > 5000
    assert "gradcam at layer block5_relu" in out and str(tmp_path) in out


def test_explain_true_and_named_classes(shared_run, run_cli, tmp_path):
    run, run_dir = shared_run
    images = _val_images(run_dir)
    code, out, err = run_cli("explain", run_dir, *images, "--method", "guided-backprop", "--class", "true",
                             "--out", tmp_path / "t")
    assert code == 0, err
    truth = {r["path"]: r["class"] for r in read_csv(run_dir / "split.csv")}
    assert [r["target"] for r in read_csv(tmp_path / "t" / "index.csv")] == [truth[p] for p in images]
    code, out, err = run_cli("explain", run_dir, *images, "--method", "saliency", "--class", run.classes[-1],
                             "--out", tmp_path / "n")
    assert code == 0, err
    assert {r["target"] for r in read_csv(tmp_path / "n" / "index.csv")} == {run.classes[-1]}


def test_explain_writes_into_the_run_folder_by_default(shared_run, run_cli):
    import shutil

    _, run_dir = shared_run
    code, out, _ = run_cli("explain", run_dir, _val_images(run_dir, 1)[0], "--method", "gradcam++",
                           "--layer", "block:2")
    try:
        assert code == 0
        assert "block2_pool" in out
        assert len(list((run_dir / "explain" / "gradcampp").glob("00_*.png"))) == 1
    finally:
        shutil.rmtree(run_dir / "explain" / "gradcampp")   # the shared run stays as it was
        if not any((run_dir / "explain").iterdir()):
            (run_dir / "explain").rmdir()


def test_explain_user_errors_are_one_line(shared_run, run_cli, tmp_path):
    _, run_dir = shared_run
    image = _val_images(run_dir, 1)[0]
    cases = [(["--class", "nosuch"], "unknown class 'nosuch'"),
             (["--method", "saliency", "--blocks", "1,2"], "--blocks compares a CAM"),
             (["--layer", "block:99"], "block:99 is out of range"),
             (["--layer", "head_dense_x"], "has no layer 'head_dense_x'"),
             (["--method", "deeplift"], "invalid choice: 'deeplift'")]
    for extra, message in cases:
        code, _, err = run_cli("explain", run_dir, image, *extra, "--out", tmp_path)
        assert code == 2 and message in err, (extra, err)
        assert err.count("\n") == 1
    code, _, err = run_cli("explain", run_dir, "--out", tmp_path)
    assert code == 2 and "no images to explain" in err
    code, _, err = run_cli("explain", run_dir, tmp_path / "missing.png", "--out", tmp_path)
    assert code == 2 and "cannot use image" in err


def test_inversions_prints_the_top_table_of_the_model(shared_run, run_cli, tmp_path):
    run, run_dir = shared_run
    code, out, err = run_cli("inversions", run_dir, "--layer", "block3_conv", "--filters", "top:3",
                             "--steps", "4", "--out", tmp_path)
    assert code == 0, err
    kernel = np.asarray(run.load_model().get_layer("block3_conv").kernel)
    sums = kernel.sum(axis=(0, 1, 2))
    expected = np.argsort(-sums, kind="stable")[:3]
    table = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()][:3]
    assert [int(t[1]) for t in table] == list(expected)
    np.testing.assert_allclose([float(t[2]) for t in table], sums[expected], rtol=1e-4)
    assert (tmp_path / "inversions.png").is_file() and (tmp_path / "losses.png").is_file()
    code, _, err = run_cli("inversions", run_dir, "--filters", "0,999", "--steps", "2", "--out", tmp_path)
    assert code == 2 and "out of range" in err


def test_inversions_of_block_n_rank_the_filters_of_its_conv_layer(shared_run, run_cli, tmp_path):
    """The README's ``--layer block:5 --filters top:8 --tune``: block 5 ends in a pool layer (no
    weights); its filters are those of block5_conv."""
    import json

    run, run_dir = shared_run
    code, out, err = run_cli("inversions", run_dir, "--layer", "block:5", "--filters", "top:8", "--tune",
                             "--steps", "3", "--out", tmp_path)
    assert code == 0, err
    sums = np.asarray(run.load_model().get_layer("block5_conv").kernel).sum(axis=(0, 1, 2))
    expected = [int(i) for i in np.argsort(-sums, kind="stable")[:8]]
    assert "top 8 filters of block5_conv by summed weights:" in out
    assert "inverted 8 filter(s) of block5_conv in 3 steps" in out
    saved = json.loads((tmp_path / "inversions.json").read_text())
    assert saved["layer"] == "block5_conv" and [t["filter"] for t in saved["top"]] == expected
    assert [t.split(" (")[0] for t in saved["targets"]] == [f"filter {i}" for i in expected]
    assert len(saved["tuning"]) == 6 and len(saved["final_loss"]) == 8
