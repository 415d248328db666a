import pytest
import yaml

from leafnet.config import Config, config_from_dict, describe, load_config, parse_override
from leafnet.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_match_the_design():
    cfg = Config()
    assert cfg.transfer.lr == 1e-2 and cfg.finetune.lr == 1e-4
    assert cfg.finetune.blocks == 1
    assert abs(cfg.data.val_split - 1 / 6) < 1e-12  # 5:1


def test_precedence_defaults_yaml_flags_set(tmp_path):
    p = write(tmp_path, "transfer: {lr: 0.5, epochs: 3}\nmodel: {backbone: b3}\n")
    cfg = load_config(p, flags={"transfer.lr": 0.25, "model.backbone": None},
                      overrides=["transfer.lr=3e-4"])
    assert cfg.transfer.lr == pytest.approx(3e-4)   # --set wins
    assert cfg.transfer.epochs == 3                  # from YAML
    assert cfg.model.backbone == "b3"                # a None flag does not override
    cfg = load_config(p, flags={"transfer.lr": 0.25})
    assert cfg.transfer.lr == 0.25


def test_yaml_exponent_numbers_are_numbers(tmp_path):
    cfg = load_config(write(tmp_path, "transfer:\n  lr: 3e-4\n"))
    assert cfg.transfer.lr == pytest.approx(3e-4)


@pytest.mark.parametrize("text, fragment", [
    ("transfer: {lrr: 0.1}", "unknown config key 'transfer.lrr' (did you mean transfer.lr?)"),
    ("trainer: {lr: 0.1}", "unknown config key 'trainer' (did you mean transfer?)"),
    ("transfer: {epochs: ten}", "transfer.epochs must be an integer; received 'ten'"),
    ("transfer: {epochs: -1}", "transfer.epochs must be >= 0; received -1"),
    ("data: {val_split: 1.5}", "data.val_split must be < 1"),
    ("model: {dropout: true}", "model.dropout must be a number"),
    ("augment: {flip: sideways}", "augment.flip must be one of none, horizontal"),
    ("finetune: {blocks: some}", "finetune.blocks must be an integer >= 0 or 'all'"),
    ("transfer: [1, 2]", "config section 'transfer' must be a mapping"),
    ("transfer: {lr: .nan}", "transfer.lr must be a finite number"),
    ("data: {data: a, train: b, val: c}", "give either data.data"),
    ("data: {train: b}", "data.train and data.val go together"),
])
def test_refusals_name_the_key(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_yaml_never_builds_python_objects(tmp_path):
    p = write(tmp_path, "run: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_invalid_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match="line [0-9]"):
        load_config(write(tmp_path, "data:\n  data: [unclosed\nmodel: {}\n"))


def test_set_parsing():
    assert parse_override("transfer.lr=3e-4") == ("transfer", "lr", 3e-4)
    assert parse_override("model.weights=none") == ("model", "weights", "none")
    assert parse_override("run.dir=null") == ("run", "dir", None)
    for bad in ("transfer.lr", "lr=1", "a.b.c=1"):
        with pytest.raises(ConfigError):
            parse_override(bad)


def test_int_accepts_integral_floats_only():
    assert config_from_dict({"transfer": {"epochs": 4.0}}).transfer.epochs == 4
    with pytest.raises(ConfigError):
        config_from_dict({"transfer": {"epochs": 4.5}})
    with pytest.raises(ConfigError):
        config_from_dict({"transfer": {"epochs": True}})


def test_describe_is_loadable_yaml_with_every_key():
    text = describe()
    loaded = yaml.safe_load(text)
    assert loaded == {k: {kk: vv for kk, vv in v.items()} for k, v in Config().to_dict().items()} or \
        set(loaded) == set(Config().to_dict())
    cfg = config_from_dict(loaded)
    assert cfg.to_dict() == Config().to_dict()
