"""`.keras` files saved with leafnet's optimizers load with their full optimizer state.

The fixtures were saved with the classes in one module (their configs say
``"module": "leafnet.train.optimizers"``); they load through the registered names
(``leafnet>Lookahead``, ...). Each was made from the functional model Input(3) -> Dense(4,
tanh, name="hidden") -> Dense(2, name="out"), seed 0, compiled with the optimizer below, fitted for
2 epochs of 2 steps on ``x, y = normal(8, 3), normal(8, 2)`` (``default_rng(0)``), saved;
the ``.npz`` beside each holds its optimizer variables at that point.
"""

import json
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from leafnet.train.optimizers import LayerwiseLR, Lookahead, RAdam, Ranger

FIXTURES = Path(__file__).parent / "fixtures"

CASES = {
    # Lookahead(RAdam(1e-2, amsgrad=True), sync_period=3)
    "lookahead_radam": (Lookahead, RAdam),
    # LayerwiseLR(Ranger(1e-2, sync_period=2), {"hidden/kernel": 0.1, "out/bias": 0.0})
    "layerwise_ranger": (LayerwiseLR, Ranger),
}


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")


@pytest.mark.parametrize("name", sorted(CASES))
def test_saved_file_loads_with_optimizer_state(name):
    path = FIXTURES / f"{name}.keras"
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))["compile_config"]["optimizer"]
    assert saved["module"] == "leafnet.train.optimizers"  # the layout the file was saved with
    assert saved["config"]["optimizer"]["module"] == "leafnet.train.optimizers"

    model = keras.saving.load_model(path, safe_mode=True)
    outer, inner = CASES[name]
    assert type(model.optimizer) is outer and type(model.optimizer.inner_optimizer) is inner
    assert int(model.optimizer.iterations) == 4
    want = np.load(FIXTURES / f"{name}.npz")
    want = [want[f"arr_{i}"] for i in range(len(want.files))]
    assert len(model.optimizer.variables) == len(want) > 4
    for got, expected in zip(model.optimizer.variables, want):
        np.testing.assert_array_equal(np.asarray(got), expected)
    assert any(np.abs(w).max() > 0 for w in want[2:])  # the state is not all zeros: the check can fail

    x, y = _data()
    before = {v.path: v.numpy() for v in model.trainable_variables}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # LayerwiseLR warns when no path matches
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == 6
    after = {v.path: v.numpy() for v in model.trainable_variables}
    assert np.abs(after["hidden/kernel"] - before["hidden/kernel"]).max() > 1e-5
    if outer is LayerwiseLR:
        assert model.optimizer.multipliers == {"hidden/kernel": 0.1, "out/bias": 0.0}
        np.testing.assert_array_equal(after["out/bias"], before["out/bias"])  # factor 0: frozen
