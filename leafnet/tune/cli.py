"""``leafnet search`` and ``leafnet cv`` (registered by :mod:`leafnet.cli`)."""

from __future__ import annotations

from leafnet.cli import add_train_flags, positive_int, train_flags


def register(sub) -> dict:
    p = sub.add_parser("search", help="hyperparameter search (random, grid, bayesian, hyperband) with KerasTuner",
                       description="Search hyperparameters: each trial is a full two-phase fit in SEARCH/trials/ID. "
                                   "Rerun the same command to resume. --epochs is the transfer-phase epochs per "
                                   "trial (hyperband: the largest budget).")
    add_train_flags(p)
    p.add_argument("--tuner", default="random", choices=("random", "grid", "bayesian", "hyperband"))
    p.add_argument("--max-trials", type=positive_int, default=10, help="number of trials (failed ones count)")
    p.add_argument("--objective", default="val_loss", choices=("val_loss", "val_accuracy"))
    p.add_argument("--space", help="search space YAML (default: lr, batch size, dropout, label smoothing; "
                                   "see configs/search-space.yaml)")
    p.add_argument("--patience", type=int, default=2, help="early stopping inside a trial (epochs, 0: off)")
    p.add_argument("--max-failures", type=positive_int, default=3, help="stop after this many failed trials in a row")
    p.add_argument("--distributed", choices=("chief", "worker"),
                   help="KerasTuner chief/worker mode: one chief serves the oracle, workers run trials")
    p.add_argument("--oracle-address", help="the chief's address (with --distributed)")
    p.add_argument("--oracle-port", type=positive_int, help="the chief's port (with --distributed)")
    p.add_argument("--worker-id", help="a unique name of this worker (default: worker-HOST-PID)")

    c = sub.add_parser("cv", help="stratified k-fold cross-validation of a fit config",
                       description="Train one run per fold in CV/fold-K and summarise mean and std of each metric.")
    add_train_flags(c)
    c.add_argument("--folds", type=positive_int, default=5)
    return {"search": cmd_search, "cv": cmd_cv}


def cmd_search(args) -> int:
    from leafnet.config import load_config
    from leafnet.tune.leaderboard import summary
    from leafnet.tune.search import SearchFailed, search

    cfg = load_config(args.config, flags=train_flags(args), overrides=args.overrides)
    try:
        result = search(cfg, tuner=args.tuner, max_trials=args.max_trials, objective=args.objective,
                        space=args.space, patience=args.patience, max_failures=args.max_failures,
                        distributed=args.distributed, oracle_address=args.oracle_address,
                        oracle_port=args.oracle_port, worker_id=args.worker_id)
    except SearchFailed as e:
        print(summary(e.result))
        raise
    print(summary(result))
    return 0


def cmd_cv(args) -> int:
    from leafnet.config import load_config
    from leafnet.tune.cv import cross_validate

    cfg = load_config(args.config, flags=train_flags(args), overrides=args.overrides)
    cross_validate(cfg, folds=args.folds)
    return 0
