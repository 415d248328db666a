"""Search spaces: parsing, refusal of impossible entries before any trial, KerasTuner declaration."""

import keras_tuner as kt
import pytest

from leafnet.config import Config
from leafnet.errors import ConfigError
from leafnet.tune.space import apply_values, check_space, declare, load_space

SPACE = {
    "transfer.lr": {"min": 1e-4, "max": 1e-1, "sampling": "log"},
    "data.batch_size": [16, 32, 64],
    "model.dropout": {"min": 0.0, "max": 0.5, "step": 0.1},
    "finetune.blocks": {"min": 0, "max": 3},
    "model.dense_units": [0, 128],
    "model.backbone": "simple-cnn",
    "phases.loss": ["crossentropy", "focal"],
    "phases.focal_gamma": {"min": 1.0, "max": 3.0, "when": {"phases.loss": "focal"}},
}


def test_entry_kinds_are_inferred():
    e = {x.key: x for x in load_space(SPACE)}
    assert (e["transfer.lr"].kind, e["transfer.lr"].sampling) == ("float", "log")
    assert e["data.batch_size"].kind == "choice" and e["data.batch_size"].values == [16, 32, 64]
    assert e["model.dropout"].kind == "float" and e["model.dropout"].discrete
    assert e["finetune.blocks"].kind == "int"
    assert e["model.backbone"].kind == "fixed"
    assert e["phases.focal_gamma"].when == {"phases.loss": ["focal"]}
    assert not e["transfer.lr"].discrete


def test_values_apply_to_both_phases_and_validate():
    cfg = apply_values(Config(), {"phases.loss": "focal", "phases.focal_gamma": 2.5, "data.batch_size": 64})
    assert cfg.transfer.loss == cfg.finetune.loss == "focal"
    assert cfg.transfer.focal_gamma == cfg.finetune.focal_gamma == 2.5
    assert cfg.data.batch_size == 64 and Config().data.batch_size != 64


@pytest.mark.parametrize("space, words", [
    ({"transfer.lrr": [0.1]}, ["transfer.lrr", "lr"]),                       # unknown key, suggestion
    ({"model.dropout": {"min": 0.0, "max": 1.5}}, ["model.dropout", "1.5"]),  # out of the config's range
    ({"transfer.lr": {"min": 0.0, "max": 0.1, "sampling": "log"}}, ["transfer.lr", "min > 0"]),
    ({"transfer.lr": {"min": 0.1, "max": 0.01}}, ["transfer.lr", "below"]),
    ({"phases.loss": ["crossentropy", "hinge"]}, ["phases.loss", "hinge"]),
    ({"phases.focal_gamma": {"min": 1.0, "max": 2.0, "when": {"phases.loss": "focal"}}}, ["earlier entry"]),
    ({"phases.loss": ["crossentropy"], "phases.focal_gamma": {"min": 1.0, "max": 2.0, "when": {"phases.loss": "focal"}}},
     ["focal", "choices"]),
    ({"data.batch_size": [16, "big"]}, ["share one type"]),
    ({"transfer.lr": [1e-3], "phases.lr": [1e-3]}, ["same config key"]),
    ({"lr": [1e-3]}, ["SECTION.KEY"]),
    ({"data.val_split": [0.1, 0.2]}, ["data.val_split", "not searchable"]),
    ({"transfer.lr": {"low": 1, "high": 2}}, ["transfer.lr", "expected"]),
])
def test_an_impossible_space_is_refused_naming_the_entry(space, words):
    with pytest.raises(ConfigError) as e:
        check_space(load_space(space), Config(), "random")
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_grid_search_needs_discrete_entries():
    with pytest.raises(ConfigError, match="transfer.lr.*grid search needs discrete"):
        check_space(load_space({"transfer.lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"}}), Config(), "grid")
    check_space(load_space({"transfer.lr": {"min": 1e-4, "max": 1e-2, "step": 10, "sampling": "log"},
                            "data.batch_size": [8, 16]}), Config(), "grid")


def test_declare_activates_conditional_entries_only_under_their_parent():
    entries = load_space(SPACE)
    hp = kt.HyperParameters()
    values = declare(hp, entries)
    assert set(values) == set(SPACE) - {"phases.focal_gamma"}      # default loss: crossentropy
    hp = kt.HyperParameters()
    hp.values["phases.loss"] = "focal"
    values = declare(hp, entries)
    assert values["phases.loss"] == "focal" and 1.0 <= values["phases.focal_gamma"] <= 3.0


def test_space_file_with_a_space_key(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("space:\n  transfer.lr: {min: 1e-4, max: 1e-2, sampling: log}\n  data.batch_size: [8, 16]\n")
    entries = load_space(p)
    assert [e.key for e in entries] == ["transfer.lr", "data.batch_size"] and entries[0].min == 1e-4


def test_a_grid_too_long_to_list_is_refused_naming_the_entry():
    with pytest.raises(ConfigError) as e:
        check_space(load_space({"model.dropout": {"min": 0, "max": 0.5, "step": 1e-9}}), Config(), "grid")
    assert str(e.value) == ("search space: model.dropout has 500,000,000 values (min 0, max 0.5, step 1e-09); grid "
                            "search is limited to 100,000 values per entry: use a larger step or --tuner random")
    with pytest.raises(ConfigError) as e:
        check_space(load_space({"model.dropout": {"min": 0.0, "max": 0.5, "step": 1e-5}, "data.batch_size": [8, 16],
                                "transfer.lr": {"min": 1e-4, "max": 1e-1, "step": 1e-4}}), Config(), "grid")
    assert str(e.value) == ("search space: the grid has 99,900,000 points (model.dropout 50,000 x data.batch_size 2 x "
                            "transfer.lr 999); grid search is limited to 1,000,000 points: use larger steps, fewer "
                            "values or --tuner random")
    with pytest.raises(ConfigError, match=r"finetune.blocks has 1,000,001 values \(min 0, max 1,000,000, step 1\)"):
        check_space(load_space({"finetune.blocks": {"min": 0, "max": 10**6}}), Config(), "grid")
    check_space(load_space({"model.dropout": {"min": 0, "max": 0.5, "step": 1e-9}}), Config(), "random")  # sampled


def test_a_grid_counts_the_values_kerastuner_lists():
    space = {"model.dropout": {"min": 0.0, "max": 0.5, "step": 0.1}, "finetune.blocks": {"min": 0, "max": 3},
             "transfer.lr": {"min": 1e-4, "max": 1e-1, "step": 10, "sampling": "log"}, "data.batch_size": [8, 16],
             "model.backbone": "simple-cnn"}
    hp = kt.HyperParameters()
    declare(hp, load_space(space))
    assert [e.count() for e in load_space(space)] == [len(list(h.values)) for h in hp.space] == [5, 4, 4, 2, 1]   # 0.5 // 0.1 is 4.0


def test_a_search_with_an_endless_grid_stops_before_kerastuner(leaves, tmp_path, tiny_config, monkeypatch):
    """Refused up front: no trial, no oracle (which would list every value), no search folder."""
    import leafnet.tune.search as search_module

    def no_kerastuner(*args, **kwargs):
        raise AssertionError("the search reached KerasTuner")

    monkeypatch.setattr(search_module, "_oracle", no_kerastuner)
    monkeypatch.setattr("leafnet.train.fit.fit", no_kerastuner)
    root = tmp_path / "search"
    with pytest.raises(ConfigError, match=r"^search space: model.dropout has 500,000,000 values .*--tuner random$"):
        search_module.search(tiny_config(leaves, root), tuner="grid", max_trials=3,
                             space={"model.dropout": {"min": 0, "max": 0.5, "step": 1e-9}})
    assert not root.exists()
