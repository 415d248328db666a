"""``leafnet search``: hyperparameter search with KerasTuner's oracles over leafnet's trainer.

Each trial is a complete two-phase ``leafnet.fit`` in its own run folder
(``SEARCH/trials/<id>/``), with early stopping inside the trial. The data are scanned and
split once for the whole search. The search folder::

    SEARCH/
      search.json     what the search is (base config, space, tuner, objective, data): a
                      rerun with anything else changed is refused
      tuner/          KerasTuner's oracle and trial files (the resume state)
      trials/<id>/    one run folder per trial
      trials.csv      one row per trial: id, status, every hyperparameter, objective, epochs, seconds
      best.yaml       the best completed trial's full config (``leafnet fit --config best.yaml``)
      plots/search.png

Rerunning the same command resumes: finished trials are kept, an interrupted trial is run
again (its run folder resumes), and the search stops at exactly ``max_trials`` trials.

Hyperband trains every trial from scratch for its bracket's epoch budget (a trial never
starts from another trial's weights), so it is successive halving without weight reuse.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from leafnet import console
from leafnet import runlock
from leafnet.config import Config
from leafnet.data.prepare import split_fingerprint
from leafnet.errors import ConfigError, LeafnetError
from leafnet.runs import default_run_dir, read_csv, write_csv, write_json, write_text
from leafnet.train.claim import claim_folder, identity_config
from leafnet.tune.leaderboard import trial_ended, trial_started
from leafnet.tune.oracle_service import configure
from leafnet.tune.space import Entry, apply_values, check_space, declare, fingerprint, load_space

TUNERS = ("random", "grid", "bayesian", "hyperband")
OBJECTIVES = {"val_loss": "min", "val_accuracy": "max"}
TRIAL_INFO = "search_trial.json"


@dataclasses.dataclass
class SearchResult:
    """What a search left: its folder, one row per trial, the best completed row, and the
    hyperparameter keys (a worker's result has no trials: the chief writes them)."""

    root: Path
    trials: list[dict]
    best: dict | None
    objective: str
    keys: list[str] = dataclasses.field(default_factory=list)
    worker: bool = False

    @property
    def best_config(self) -> Path | None:
        return self.root / "best.yaml" if self.best else None

    @property
    def maximize(self) -> bool:
        return OBJECTIVES[self.objective] == "max"


class SearchFailed(LeafnetError):
    """The search ended without a best trial; ``result`` holds the trials it did run."""

    def __init__(self, message: str, result: SearchResult):
        super().__init__(message)
        self.result = result


def _oracle(tuner: str, objective: str, max_trials: int, max_epochs: int, seed: int, max_failures: int):
    import keras_tuner as kt

    from leafnet.runs import write_json as atomic_json

    base = {"random": kt.oracles.RandomSearchOracle, "grid": kt.oracles.GridSearchOracle,
            "bayesian": kt.oracles.BayesianOptimizationOracle, "hyperband": kt.oracles.HyperbandOracle}[tuner]

    class AtomicOracle(base):
        """KerasTuner's oracle, with its state files written atomically (a kill mid-write
        must not cost the search its resume state)."""

        def save(self):
            atomic_json(self._get_oracle_fname(), self.get_state())

        def _save_trial(self, trial):
            atomic_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state())

    common = {"objective": kt.Objective(objective, OBJECTIVES[objective]), "seed": seed,
              "max_consecutive_failed_trials": max_failures}
    if tuner == "hyperband":
        oracle = AtomicOracle(max_epochs=max_epochs, factor=3, **common)
        oracle.max_trials = max_trials  # a cap: Hyperband's own brackets decide the count below it
        return oracle
    return AtomicOracle(max_trials=max_trials, **common)


def _tuner_class():
    import keras_tuner as kt
    from keras_tuner.engine.base_tuner import BaseTuner

    class HyperModel(kt.HyperModel):
        """``build(hp)`` returns the trial's values of the space (not a Keras model: leafnet's
        trainer builds the model and the data pipeline, batch size included)."""

        def __init__(self, entries: list[Entry]):
            super().__init__(name="leafnet")
            self.entries = entries

        def build(self, hp):
            return declare(hp, self.entries)

    class LeafnetTuner(BaseTuner):
        def __init__(self, oracle, entries, base: Config, split, root: Path, link=None, **kwargs):
            super().__init__(oracle, hypermodel=HyperModel(entries), directory=str(root), project_name="tuner",
                             overwrite=False, **kwargs)
            self.base, self.split, self.root, self.link = base, split, root, link
            if self._is_worker():
                link.connect(self.oracle)

        def search(self, *args, **kwargs):
            if self.link is None or self.link.role != "chief":
                return super().search(*args, **kwargs)
            self.oracle.verbose = kwargs.get("verbose", 1)
            self.save()
            self.link.serve(self.oracle, verbose=self.base.run.verbose)

        def save(self):
            if not self._is_worker():
                self.oracle.save()
            write_json(self._get_tuner_fname(), self.get_state())

        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            values = self.hypermodel.build(hp)
            trial_dir = self.root / "trials" / trial.trial_id
            info_path = trial_dir / TRIAL_INFO
            previous = _read_json(info_path)
            if self.base.run.verbose:
                console.info(trial_started(trial.trial_id, values))
            t0 = time.perf_counter()
            import keras

            keras.utils.clear_session(free_memory=True)  # the previous trial's graphs and models
            alive = self.link.heartbeat(self.oracle, trial.trial_id) if self._is_worker() else contextlib.nullcontext()
            try:
                cfg = apply_values(self.base, values)
                if "tuner/epochs" in hp.values:  # Hyperband's budget for this trial
                    cfg.transfer.epochs = int(hp.values["tuner/epochs"])
                cfg.run.dir = str(trial_dir)
                cfg.run.verbose = 0
                from leafnet.train.fit import fit

                with alive:
                    run = fit(cfg, split=self.split)
                m = run.metrics
                result = {"val_loss": float(m["val_loss"]), "val_accuracy": float(m["val_accuracy"])}
                if not all(math.isfinite(v) for v in result.values()):
                    raise LeafnetError(f"the trial ended with non-finite metrics {result}")
                status, reason = "COMPLETED", ""
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # one trial's failure is recorded; the search goes on
                result, status = None, "FAILED"
                reason = str(e) if isinstance(e, LeafnetError) else f"{type(e).__name__}: {e}"
            seconds = previous.get("seconds", 0.0) + time.perf_counter() - t0
            trial_dir.mkdir(parents=True, exist_ok=True)
            write_json(info_path, {"trial_id": trial.trial_id, "status": status, "reason": reason,
                                   "tuner_id": self.tuner_id,
                                   "values": values, "seconds": round(seconds, 2), "metrics": result})
            if self.base.run.verbose:
                epochs = _read_json(trial_dir / "metrics.json").get("epochs") if result else None
                console.info(trial_ended(trial.trial_id, result, epochs, seconds, reason))
            if result is None:
                raise kt.errors.FailedTrialError(reason)
            return result

    return LeafnetTuner


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def search(config: Config | dict | str | os.PathLike | None = None, *, tuner: str = "random",
           max_trials: int = 10, objective: str = "val_loss", space: str | os.PathLike | dict | None = None,
           patience: int = 2, max_failures: int = 3, distributed: str | None = None,
           oracle_address: str | None = None, oracle_port: int | None = None, worker_id: str | None = None,
           oracle_token: str | None = None, oracle_cert: str | None = None, oracle_key: str | None = None,
           oracle_ca: str | None = None, worker_timeout: float = 600.0, **flags: Any) -> SearchResult:
    """Search hyperparameters; return the trials and the best one.

    Args:
        config: the base config (a Config, a nested dict or a YAML path), as for :func:`leafnet.fit`;
            ``run.dir`` is the search folder, ``transfer.epochs`` the epochs per trial.
        tuner: random, grid, bayesian or hyperband.
        max_trials: the number of trials (failed ones count); a cap for hyperband.
        objective: val_loss (minimised) or val_accuracy (maximised).
        space: a YAML file or mapping (see :mod:`leafnet.tune.space`); None for the default space.
        patience: early stopping inside each trial (epochs without improvement, both phases;
            0: off); a space entry for ``*.early_stopping`` overrides it.
        max_failures: stop after this many failed trials in a row.
        distributed: None, ``"chief"`` or ``"worker"`` (KerasTuner's chief/worker mode; the
            chief serves the oracle at ``oracle_address:oracle_port`` and writes the results).
        oracle_token, oracle_cert, oracle_key, oracle_ca, worker_timeout: the oracle service's
            shared token, TLS files and silent-worker limit (see :mod:`leafnet.tune.oracle_service`).
        **flags: dotted config overrides.
    """
    from leafnet.train.lifecycle import CLASSIFIER, as_config, require_data

    if tuner not in TUNERS:
        raise ConfigError(f"unknown tuner {tuner!r}; choose one of: {', '.join(TUNERS)}")
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    for name, value, low in (("max_trials", max_trials, 1), ("patience", patience, 0),
                             ("max_failures", max_failures, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}; received {value!r}")
    base = as_config(config, **flags)
    from leafnet.data.layout import use_split_layout

    use_split_layout(base.data, verbose=bool(base.run.verbose))
    require_data(base, "search", validates="a search ranks its trials")
    for phase in (base.transfer, base.finetune):
        phase.early_stopping = patience
    entries = load_space(space)
    check_space(entries, base, tuner)
    verbose = base.run.verbose
    root = Path(base.run.dir).expanduser().resolve() if base.run.dir else default_run_dir(f"search-{tuner}").resolve()
    link = configure(distributed, oracle_address, oracle_port, worker_id, token=oracle_token, cert=oracle_cert,
                     key=oracle_key, ca=oracle_ca, worker_timeout=worker_timeout)

    # The chief (or a lone search) holds the folder; KerasTuner's workers share it by design,
    # each trial's fit holding that trial's folder.
    with runlock.hold(root) if distributed != "worker" else contextlib.nullcontext():
        split = CLASSIFIER.scan(base, progress=bool(verbose) and distributed != "worker")
        stored = identity_config(base)
        identity = {"tuner": tuner, "objective": objective, "space": fingerprint(entries), "base_config": stored,
                    "data": split_fingerprint(split)}
        root.mkdir(parents=True, exist_ok=True)
        resuming = claim_folder(root / "search.json", identity, "search")
        if link is not None and link.token_generated:
            console.info(link.announce())
        if verbose and distributed != "worker":
            console.info(f"search folder: {root}" + ("  (resuming)" if resuming else "")
                         + f"\n{tuner} search, {max_trials} trials, objective {objective}, "
                         f"{len(split.paths)} images in {len(split.classes)} classes")

        import logging

        import keras_tuner as kt

        # Each trial builds new models and predict functions; TensorFlow's retracing warnings
        # about that are expected here and say nothing to the user.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        # KerasTuner prints the traceback of every failed trial; leafnet records the reason in
        # trials.csv and the trial's search_trial.json instead.
        from keras_tuner.src import config as kt_config

        kt_config.DEBUG = False
        oracle = _oracle(tuner, objective, max_trials, base.transfer.epochs, base.run.seed, max_failures)
        # KerasTuner's constructor prints "Reloading Tuner from ..." on a resume, with no setting
        # to turn it off; leafnet's own "(resuming)" line says it.
        with contextlib.redirect_stdout(io.StringIO()):
            tuner_obj = _tuner_class()(oracle, entries, base, split, root, link=link)
        if not resuming or not Path(tuner_obj._get_tuner_fname()).is_file():
            tuner_obj.save()  # so a search killed inside its first trial resumes that trial
        failure = None
        try:
            with link.worker_errors() if distributed == "worker" else contextlib.nullcontext():
                tuner_obj.search(verbose=0)  # KerasTuner's per-trial display off: leafnet prints its own lines
        except RuntimeError as e:
            if "consecutive failures" not in str(e):
                raise
            failure = (f"stopped after {max_failures} failed trials in a row; the last one: "
                       f"{_last_reason(root, oracle)} (see {root / 'trials.csv'})")
        except kt.errors.FatalError as e:
            raise LeafnetError(f"the search stopped: {e}") from None
        if distributed == "worker":
            return SearchResult(root, [], None, objective, [e.key for e in entries], worker=True)
        result = write_results(root, oracle, entries, objective, stored_verbose=verbose)
        if failure:
            raise SearchFailed(failure, result)
        if result.best is None:
            raise SearchFailed(f"no trial completed ({len(result.trials)} failed); no best.yaml written. "
                               f"Reasons in {root / 'trials.csv'}", result)
        return result


def _last_reason(root: Path, oracle) -> str:
    for trial_id in reversed(oracle.end_order):
        reason = _read_json(root / "trials" / trial_id / TRIAL_INFO).get("reason")
        if reason:
            return reason
    return "unknown"


def write_results(root: Path, oracle, entries: list[Entry], objective: str, stored_verbose: int = 1) -> SearchResult:
    """trials.csv, best.yaml and plots/search.png from the oracle's trials."""
    keys = [e.key for e in entries]
    direction = OBJECTIVES[objective]
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        info = _read_json(root / "trials" / trial_id / TRIAL_INFO)
        metrics = _read_json(root / "trials" / trial_id / "metrics.json")
        status = str(trial.status)
        score = trial.score if status == "COMPLETED" else None
        extra = {k: v for k, v in trial.hyperparameters.values.items() if k.startswith("tuner/")}
        rows.append({
            "trial": trial_id, "status": status,
            **{k: trial.hyperparameters.values.get(k) if trial.hyperparameters.is_active(k) else None for k in keys},
            objective: score,
            "val_loss": (info.get("metrics") or {}).get("val_loss"),
            "val_accuracy": (info.get("metrics") or {}).get("val_accuracy"),
            "epochs": metrics.get("epochs"), "seconds": info.get("seconds"),
            "budget": extra.get("tuner/epochs"), "reason": info.get("reason") or _message(trial),
        })
    header = ["trial", "status", *keys, objective, *[k for k in ("val_loss", "val_accuracy") if k != objective],
              "epochs", "seconds", "budget", "reason"]
    write_csv(root / "trials.csv", header, ([_cell(r.get(h)) for h in header] for r in rows))
    done = [r for r in rows if r["status"] == "COMPLETED" and r[objective] is not None and math.isfinite(r[objective])]
    best = None
    if done:
        best = (min if direction == "min" else max)(done, key=lambda r: r[objective])
        _write_best(root, best, objective, stored_verbose)
    from leafnet.plots import plot_search

    plot_search(rows, entries, objective, root / "plots" / "search.png")
    write_json(root / "search_summary.json", {
        "objective": objective, "trials": len(rows), "completed": len(done),
        "failed": sum(r["status"] == "FAILED" for r in rows), "best": best})
    return SearchResult(root, rows, best, objective, keys)


def _message(trial) -> str:
    """The last line of KerasTuner's traceback of a failed trial (the exception itself)."""
    lines = [ln for ln in (trial.message or "").strip().splitlines() if ln.strip()]
    return lines[-1].split(": ", 1)[-1] if lines else ""


def _cell(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def _write_best(root: Path, best: dict, objective: str, verbose: int) -> None:
    import yaml

    trial_cfg = yaml.safe_load((root / "trials" / best["trial"] / "config.yaml").read_text(encoding="utf-8"))
    trial_cfg.setdefault("run", {})["verbose"] = verbose
    header = (f"# leafnet search: the best trial ({best['trial']}, {objective} {best[objective]:.6g}) of "
              f"{root}\n# `leafnet fit --config THIS --run-dir DIR` trains it as is\n")
    write_text(root / "best.yaml", header + yaml.safe_dump(trial_cfg, sort_keys=False))


def read_trials(root: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a search folder's trials.csv."""
    return read_csv(Path(root) / "trials.csv")
