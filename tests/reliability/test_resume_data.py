"""A resumed run checks that its files are still the ones split.csv recorded: a swapped,
overwritten or missing image refuses the resume naming it, a row outside the data folder is
refused unread, and files added since the split are said and left out."""

import csv
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import leafnet
from leafnet.errors import DataError
from leafnet.runs import read_csv

CLASSES = ("elm", "oak")


class Killed(Exception):
    pass


def png(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((32, 32, 3)) * 255).astype("uint8")
    Image.fromarray(arr).save(path)


@pytest.fixture
def data(tmp_path):
    """Two classes with the same file names, different images."""
    root = tmp_path / "leaves"
    for c, name in enumerate(CLASSES):
        for i in range(5):
            png(root / name / f"img_{i}.png", seed=10 * c + i)
    return root


def killed_run(root, run_dir, tiny_config, monkeypatch, **over):
    """A run folder as a kill while caching the images leaves it: split.csv written, no epoch."""
    cfg = tiny_config(root, run_dir, transfer__epochs=1, finetune__epochs=0, data__val_split=0.4, **over)

    def kill(self, *args, **kwargs):
        raise Killed()

    with monkeypatch.context() as m:
        m.setattr("leafnet.data.pipeline.ImageSet.cache", kill)
        with pytest.raises(Killed):
            leafnet.fit(cfg)
    assert (run_dir / "split.csv").is_file() and not (run_dir / "metrics.json").exists()
    return cfg


def refusal(cfg) -> str:
    with pytest.raises(DataError) as e:
        leafnet.fit(cfg)
    assert "\n" not in str(e.value)
    return str(e.value)


def changed(path, why, others=0):
    more = f" and {others} other file(s)" if others else ""
    return (f"data changed since this run started: {path} ({why}){more}; "
            f"restore {'them' if others else 'it'} or start a new run with another --run-dir")


def test_swapped_class_folders_are_refused(data, tmp_path, tiny_config, monkeypatch):
    cfg = killed_run(data, tmp_path / "run", tiny_config, monkeypatch)
    os.rename(data / "elm", data / "tmp")
    os.rename(data / "oak", data / "elm")
    os.rename(data / "tmp", data / "oak")
    assert refusal(cfg) == changed(data / "elm" / "img_0.png", "content differs from split.csv", others=9)


def test_an_image_overwritten_in_place_is_refused(data, tmp_path, tiny_config, monkeypatch):
    cfg = killed_run(data, tmp_path / "run", tiny_config, monkeypatch)
    png(data / "oak" / "img_3.png", seed=999)
    assert refusal(cfg) == changed(data / "oak" / "img_3.png", "content differs from split.csv")


def test_a_missing_image_is_refused(data, tmp_path, tiny_config, monkeypatch):
    cfg = killed_run(data, tmp_path / "run", tiny_config, monkeypatch)
    (data / "elm" / "img_1.png").unlink()
    assert refusal(cfg) == changed(data / "elm" / "img_1.png", "missing")


def test_an_old_split_csv_without_sizes_is_checked_by_hashing(data, tmp_path, tiny_config, monkeypatch):
    """Without size, mtime and inode columns every file is hashed: a rewrite that keeps the
    size and the mtime is still found."""
    run_dir = tmp_path / "run"
    cfg = killed_run(data, run_dir, tiny_config, monkeypatch)
    rows = read_csv(run_dir / "split.csv")
    assert {"size", "mtime_ns", "inode"} <= set(rows[0])
    with open(run_dir / "split.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "class", "subset", "sha1"])
        w.writerows([r["path"], r["class"], r["subset"], r["sha1"]] for r in rows)
    target = data / "elm" / "img_2.png"
    st = target.stat()
    body = bytearray(target.read_bytes())
    body[-20] ^= 0xFF                                      # same size, other bytes
    target.write_bytes(bytes(body))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert refusal(cfg) == changed(target, "content differs from split.csv")


@pytest.mark.parametrize("row_path", ["/etc/passwd", "../x.jpg", "{data}/elm/../../outside.png"])
def test_a_row_outside_the_data_folder_is_refused_unread(data, tmp_path, tiny_config, monkeypatch, row_path):
    run_dir = tmp_path / "run"
    cfg = killed_run(data, run_dir, tiny_config, monkeypatch)
    row_path = row_path.format(data=data)
    text = (run_dir / "split.csv").read_text(encoding="utf-8")
    first = read_csv(run_dir / "split.csv")[1]["path"]
    (run_dir / "split.csv").write_text(text.replace(first, row_path), encoding="utf-8")
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(os.fspath(p)) or real_open(p, *a, **k))
    assert refusal(cfg) == (f"{run_dir / 'split.csv'}, row 2: {row_path} lies outside the run's data folder "
                            f"({data}); refusing to read it; start a new run with another --run-dir")
    assert not [p for p in opened if p.endswith(("passwd", "x.jpg", "outside.png"))]


@pytest.mark.slow
def test_new_files_are_said_and_the_resume_goes_on(data, tmp_path, tiny_config, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    cfg = killed_run(data, run_dir, tiny_config, monkeypatch, run__verbose=1)
    png(data / "elm" / "new_1.png", seed=50)
    png(data / "oak" / "nested" / "new_2.png", seed=51)
    (data / "oak" / "notes.txt").write_text("not an image")       # not an image: not counted
    os.utime(data / "elm" / "img_0.png")                            # touched, same content: fine
    capsys.readouterr()
    run = leafnet.fit(cfg)
    out = capsys.readouterr().out
    assert "note: 2 new file(s) are not in this run; start a new run to use them" in out.splitlines()
    assert run.metrics["train_images"] + run.metrics["val_images"] == 10
    assert len(read_csv(run_dir / "split.csv")) == 10


def test_a_resumed_pretext_run_checks_its_files(data, tmp_path, tiny_config, monkeypatch):
    from leafnet.pretext.run import pretext

    run_dir = tmp_path / "rot"
    cfg = tiny_config(data, run_dir, transfer__epochs=1, finetune__epochs=0, data__val_split=0.4)

    def kill(self, *args, **kwargs):
        raise Killed()

    with monkeypatch.context() as m:
        m.setattr("leafnet.data.pipeline.ImageSet.cache", kill)
        with pytest.raises(Killed):
            pretext(cfg, task="rotation")
    shutil.copyfile(data / "oak" / "img_0.png", data / "elm" / "img_4.png")
    with pytest.raises(DataError) as e:
        pretext(cfg, task="rotation")
    assert str(e.value) == changed(data / "elm" / "img_4.png", "content differs from split.csv")
