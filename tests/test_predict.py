"""leafnet predict: CSV columns and order, a corrupt file's row, class names, probabilities."""

import json
import shutil

import numpy as np
import pytest

from leafnet.runs import read_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(shared_run):
    return shared_run


@pytest.fixture(scope="module")
def images(tmp_path_factory, leaves):
    root = tmp_path_factory.mktemp("predict_in")
    folder = root / "folder"
    (folder / "sub").mkdir(parents=True)
    classes = sorted(p.name for p in leaves.iterdir())
    shutil.copy(leaves / classes[0] / f"{classes[0]}_0001.png", folder / "b.png")
    shutil.copy(leaves / classes[1] / f"{classes[1]}_0002.png", folder / "sub" / "a.png")
    (folder / "c_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    single = leaves / classes[2] / f"{classes[2]}_0003.png"
    return [single, folder], [str(single), str(folder / "b.png"), str(folder / "c_broken.jpg"),
                              str(folder / "sub" / "a.png")]


def test_cli_csv_rows_columns_and_a_corrupt_file(trained, images, tmp_path, run_cli):
    import keras

    from leafnet.data.pipeline import load_image

    run, run_dir = trained
    inputs, expected_paths = images
    out = tmp_path / "preds.csv"
    code, stdout, err = run_cli("predict", run_dir, *inputs, "--out", out, "--top-k", "3")
    assert code == 0, err
    assert str(out) in stdout and "1 could not be read" in stdout
    header = out.read_text().splitlines()[0]
    assert header == "path,class,confidence,top2_class,top2_confidence,top3_class,top3_confidence,error"
    rows = read_csv(out)
    assert [r["path"] for r in rows] == expected_paths     # input order, folder sorted, .txt ignored
    bad = rows[2]
    assert bad["class"] == "" and bad["confidence"] == "" and "decode" in bad["error"]
    good = [r for r in rows if not r["error"]]
    model = keras.saving.load_model(run_dir / "model.keras")
    x = np.stack([load_image(r["path"], 32).numpy() for r in good]).astype("float32")
    probs = model.predict(x, verbose=0)
    for r, p in zip(good, probs):
        order = np.argsort(-p)
        assert [r["class"], r["top2_class"], r["top3_class"]] == [run.classes[i] for i in order[:3]]
        assert float(r["confidence"]) == pytest.approx(float(p[order[0]]), abs=2e-6)
        assert float(r["top3_confidence"]) == pytest.approx(float(p[order[2]]), abs=2e-6)


def test_bare_keras_file_uses_classes_json_beside_it_or_indices(trained, images, tmp_path):
    from leafnet.predict import predict

    run, run_dir = trained
    _, paths = images
    shutil.copy(run_dir / "model.keras", tmp_path / "m.keras")
    res = predict(tmp_path / "m.keras", paths, top_k=2)
    assert all(r["class"] in {"0", "1", "2", "3"} for r in res if not r["error"])
    assert [len(r["top"]) for r in res] == [2, 2, 0, 2]
    (tmp_path / "classes.json").write_text(json.dumps(run.classes))
    named = predict(tmp_path / "m.keras", paths, top_k=2)
    from_run = predict(run, paths, top_k=2)
    assert [r["class"] for r in named] == [r["class"] for r in from_run]
    assert [r["class"] for r in named if r["class"]] == [run.classes[int(r["class"])] for r in res if r["class"]]


def test_formula_cells_are_escaped_and_errors_are_one_line(trained, tmp_path, leaves, run_cli, monkeypatch):
    _, run_dir = trained
    cls = sorted(p.name for p in leaves.iterdir())[0]
    img = tmp_path / "=cmd.png"
    shutil.copy(leaves / cls / f"{cls}_0001.png", img)
    out = tmp_path / "p.csv"
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("predict", run_dir, "=cmd.png", "--out", out)
    assert code == 0, err
    assert out.read_text().splitlines()[1].startswith("'=cmd.png,")     # escaped in the file
    assert read_csv(out)[0]["path"] == "=cmd.png"                       # and read back as written
    code, _, err = run_cli("predict", tmp_path / "nope", "=cmd.png", "--out", out)
    assert code == 2 and err.startswith("error: ") and "nope" in err


def test_exif_rotated_copy_gets_the_prediction_of_the_upright_photo(trained, leaves, tmp_path):
    """A phone stores a portrait photo sideways plus an EXIF tag: leafnet must see it upright."""
    from PIL import Image

    from leafnet.predict import predict

    run, _ = trained
    cls = sorted(p.name for p in leaves.iterdir())[1]
    with Image.open(leaves / cls / f"{cls}_0004.png") as im:
        upright = im.convert("RGB")
    upright.save(tmp_path / "upright.jpg", quality=100, subsampling=0)
    exif = Image.Exif()
    exif[0x0112] = 6                                   # "turn 90 degrees clockwise to view"
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.jpg", quality=100, subsampling=0,
                                                      exif=exif.tobytes())
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.jpg", quality=100, subsampling=0)
    up, phone, sideways = predict(run, [tmp_path / "upright.jpg", tmp_path / "phone.jpg", tmp_path / "sideways.jpg"])
    assert phone["class"] == up["class"]
    np.testing.assert_allclose(phone["probabilities"], up["probabilities"], atol=0.02)
    # what ignoring the tag would have given: the sideways pixels, not the upright ones
    assert np.abs(sideways["probabilities"] - up["probabilities"]).max() > np.abs(
        phone["probabilities"] - up["probabilities"]).max()


def test_onnx_engine_predicts_as_keras_and_exports_once(trained, images, tmp_path, run_cli, monkeypatch):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'leafnet[onnx]')")
    import leafnet.export
    from leafnet.predict import predict

    run_dir = tmp_path / "run"
    shutil.copytree(trained[1], run_dir)
    inputs, expected_paths = images
    keras_rows = predict(run_dir, inputs)
    code, _, err = run_cli("predict", run_dir, *inputs, "--out", tmp_path / "onnx.csv", "--engine", "onnx")
    assert code == 0, err
    cached = list((run_dir / "cache").glob("predict-*.onnx"))
    assert len(cached) == 1 and not list(run_dir.rglob("*.tmp*"))
    rows = read_csv(tmp_path / "onnx.csv")
    assert [r["path"] for r in rows] == expected_paths
    for r, k in zip(rows, keras_rows):
        assert r["class"] == k["class"] and r["error"] == k["error"]
        if not k["error"]:
            assert float(r["confidence"]) == pytest.approx(k["confidence"], abs=1e-5)
    # The second call runs the cached file: no export.
    monkeypatch.setattr(leafnet.export, "save_onnx", lambda *a, **k: pytest.fail("exported again"))
    again = predict(run_dir, inputs, engine="onnx")
    assert [r["class"] for r in again] == [r["class"] for r in keras_rows]
    with pytest.raises(leafnet.LeafnetError, match="unknown engine"):
        predict(run_dir, inputs, engine="tensorrt")
