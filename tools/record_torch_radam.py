"""Record torch.optim.RAdam trajectories as a test fixture for leafnet's RAdam.

Runs in a separate virtual environment with torch (the test suite does not need torch)::

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy
    /tmp/torchvenv/bin/python tools/record_torch_radam.py   # writes tests/train/fixtures/torch_radam.json

Each run minimises a small non-quadratic function from a fixed start with a fixed
learning rate, in float64, and stores every 10th point (step 0 is the start). torch's
RAdam has no warmup (compare with ``total_steps=0``) and rectifies when ``rho_t > 5``
(tfa and leafnet: ``sma_t >= 5``; ``rho_t`` is never exactly 5). torch adds ``eps`` to
``sqrt(v)`` where tfa adds it to ``sqrt(v / (1 - beta_2**t))``: with ``eps=1e-8`` and these
gradient sizes the difference is far below the tests' tolerance. The weight-decay run uses
``decoupled_weight_decay=True`` (``p *= 1 - lr * wd`` before the step), which is Keras'
``weight_decay`` mechanism.

The functions are written twice, here in torch and in tests/train/test_optimizers.py in
TensorFlow; keep them in step.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "train" / "fixtures" / "torch_radam.json"

STEPS = 300
EVERY = 10
CENTRES = [0.5, -1.0, 1.5, -0.5, 2.0]


def rosenbrock(x):
    """2-D Rosenbrock: (1 - x0)^2 + 100 (x1 - x0^2)^2."""
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def logcosh_sin(x):
    """5-D: sum_i log cosh(x_i - c_i) + 0.3 sum_i sin(x_i) cos(x_{i+1 mod 5})."""
    c = torch.tensor(CENTRES, dtype=x.dtype)
    return torch.sum(torch.log(torch.cosh(x - c))) + 0.3 * torch.sum(torch.sin(x) * torch.cos(torch.roll(x, -1)))


FUNCTIONS = {"rosenbrock": rosenbrock, "logcosh_sin": logcosh_sin}

RUNS = [
    {"function": "rosenbrock", "start": [-1.2, 1.0], "lr": 2e-3, "weight_decay": 0.0},
    {"function": "logcosh_sin", "start": [2.0, 1.0, -1.5, 0.3, -2.5], "lr": 1e-2, "weight_decay": 0.0},
    {"function": "logcosh_sin", "start": [2.0, 1.0, -1.5, 0.3, -2.5], "lr": 1e-2, "weight_decay": 0.1},
]
BETAS = (0.9, 0.999)
EPS = 1e-8


def run(spec):
    x = torch.tensor(spec["start"], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.RAdam(
        [x], lr=spec["lr"], betas=BETAS, eps=EPS, weight_decay=spec["weight_decay"],
        decoupled_weight_decay=spec["weight_decay"] != 0.0,
    )
    fn = FUNCTIONS[spec["function"]]
    points = [{"step": 0, "x": x.detach().tolist()}]
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        opt.step()
        if step % EVERY == 0:
            points.append({"step": step, "x": x.detach().tolist()})
    final = float(fn(x.detach()))
    if not all(math.isfinite(v) for p in points for v in p["x"]):
        raise RuntimeError(f"non-finite trajectory for {spec}")
    return {
        **spec,
        "beta_1": BETAS[0],
        "beta_2": BETAS[1],
        "epsilon": EPS,
        "decoupled_weight_decay": spec["weight_decay"] != 0.0,
        "steps": STEPS,
        "every": EVERY,
        "start_loss": float(fn(torch.tensor(spec["start"], dtype=torch.float64))),
        "final_loss": final,
        "points": points,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    data = {
        "torch_version": torch.__version__,
        "optimizer": "torch.optim.RAdam",
        "dtype": "float64",
        "centres_logcosh_sin": CENTRES,
        "runs": [run(spec) for spec in RUNS],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    for r in data["runs"]:
        print(f"{r['function']:12s} lr={r['lr']:g} wd={r['weight_decay']:g}: "
              f"loss {r['start_loss']:.4f} -> {r['final_loss']:.4f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
