"""``leafnet search`` and ``leafnet cv`` (registered by :mod:`leafnet.cli`)."""

from __future__ import annotations

from leafnet import console
from leafnet.cli import add_train_flags, positive_int, train_flags
from leafnet.cli_help import examples


def register(sub) -> dict:
    p = sub.add_parser("search", help="hyperparameter search (random, grid, bayesian, hyperband) with KerasTuner",
                       description="Search hyperparameters: each trial is a full two-phase fit in SEARCH/trials/ID. "
                                   "Rerun the same command to resume. --epochs is the transfer-phase epochs per "
                                   "trial (hyperband: the largest budget).",
                       epilog=examples("leafnet search --config configs/demo.yaml --tuner bayesian --max-trials 20",
                                       "leafnet search --data leaves/ --space configs/search-lr-batch.yaml --epochs 8",
                                       "leafnet search --config configs/demo.yaml --tuner hyperband --epochs 9"))
    add_train_flags(p)
    p.add_argument("--tuner", default="random", choices=("random", "grid", "bayesian", "hyperband"),
                   help="KerasTuner's oracle")
    p.add_argument("--max-trials", type=positive_int, default=10, metavar="N",
                   help="number of trials (failed ones count)")
    p.add_argument("--objective", default="val_loss", choices=("val_loss", "val_accuracy"),
                   help="the metric that ranks trials")
    p.add_argument("--space", metavar="FILE", help="search space YAML (default: lr, batch size, dropout, label "
                                                   "smoothing; see configs/search-space.yaml)")
    p.add_argument("--patience", type=int, default=2, metavar="N",
                   help="early stopping inside a trial (epochs, 0: off)")
    p.add_argument("--max-failures", type=positive_int, default=3, metavar="N",
                   help="stop after this many failed trials in a row")
    p.add_argument("--distributed", choices=("chief", "worker"),
                   help="KerasTuner chief/worker mode: one chief serves the oracle, workers run trials")
    p.add_argument("--oracle-address", metavar="HOST", help="the chief's address (with --distributed)")
    p.add_argument("--oracle-port", type=positive_int, metavar="PORT", help="the chief's port (with --distributed)")
    p.add_argument("--worker-id", metavar="NAME", help="a unique name of this worker (default: worker-HOST-PID)")
    p.add_argument("--oracle-token", metavar="TOKEN",
                   help="the secret shared by the chief and its workers (default: $LEAFNET_ORACLE_TOKEN, which "
                        "other users cannot see in ps; a chief on loopback without one generates and prints one)")
    p.add_argument("--oracle-cert", metavar="FILE", help="the chief's TLS certificate (PEM; with --oracle-key)")
    p.add_argument("--oracle-key", metavar="FILE", help="the chief's TLS private key (PEM)")
    p.add_argument("--oracle-ca", metavar="FILE",
                   help="a worker's TLS: the certificate (PEM) that signed the chief's")
    p.add_argument("--worker-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="the chief ends the trial of a worker silent this long as failed (default: 600)")

    c = sub.add_parser("cv", help="stratified k-fold cross-validation of a fit config",
                       description="Train one run per fold in CV/fold-K and summarise mean and std of each metric; "
                                   "it takes the flags of fit.",
                       epilog=examples("leafnet cv --config configs/demo.yaml --folds 5 --run-dir runs/cv",
                                       "leafnet cv --data leaves/ --backbone b0 --folds 3 --run-dir runs/cv-b0"))
    add_train_flags(c)
    c.add_argument("--folds", type=positive_int, default=5, metavar="K", help="number of folds (one run each)")
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
                        oracle_port=args.oracle_port, worker_id=args.worker_id, oracle_token=args.oracle_token,
                        oracle_cert=args.oracle_cert, oracle_key=args.oracle_key, oracle_ca=args.oracle_ca,
                        worker_timeout=args.worker_timeout)
    except SearchFailed as e:
        console.info(summary(e.result))
        raise
    console.info(summary(result))
    return 0


def cmd_cv(args) -> int:
    from leafnet.config import load_config
    from leafnet.tune.cv import cross_validate

    cfg = load_config(args.config, flags=train_flags(args), overrides=args.overrides)
    cross_validate(cfg, folds=args.folds)
    return 0
