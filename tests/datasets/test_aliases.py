"""The old import paths leafnet.data.synth and leafnet.data.demo still give the same objects."""

from __future__ import annotations


def test_synth_alias_re_exports_the_generator():
    import leafnet.data.synth as old
    import leafnet.datasets as new

    assert old.__all__ == ["SPECIES", "render_leaf", "generate"]
    assert old.generate is new.generate and old.render_leaf is new.render_leaf and old.SPECIES is new.SPECIES


def test_demo_alias_re_exports_the_cache(tmp_path, monkeypatch):
    import leafnet.data.demo as old
    import leafnet.datasets.demo as new

    assert old.demo_folder is new.demo_folder and old.DEMO is new.DEMO and old.DEMO_VERSION == new.DEMO_VERSION
    monkeypatch.setenv("LEAFNET_CACHE", str(tmp_path))
    assert old.cache_root() == tmp_path
    assert old.demo_path() == tmp_path / f"demo-leaves-{new.DEMO_VERSION}"
