"""The phase plan, by hand: which phases, the blocks of each epoch, the mixing epochs, the
epochs of each ``fit`` call and where a resumed run starts. No model is built."""

from __future__ import annotations

import pytest

from leafnet.config import AugmentConfig, config_from_dict
from leafnet.errors import LeafnetError
from leafnet.train.checkpoint import TrainState
from leafnet.train.phases import (
    Phase,
    PhaseStart,
    mixing,
    one_at_a_time,
    phase_start,
    plan_phases,
    segment_epochs,
    stage_blocks,
)


def test_plan_names_the_phases_with_epochs_and_their_settings():
    cfg = config_from_dict({"transfer": {"epochs": 3, "lr": 1e-2}, "finetune": {"epochs": 2, "blocks": 2, "lr": 1e-4}})
    plan = plan_phases(cfg)
    assert [(p.name, p.cfg.epochs, p.cfg.lr) for p in plan] == [("transfer", 3, 1e-2), ("finetune", 2, 1e-4)]
    assert [p.name for p in plan_phases(config_from_dict({"transfer": {"epochs": 0}}))] == ["finetune"]
    assert [p.name for p in plan_phases(config_from_dict({"finetune": {"blocks": 0}}))] == ["transfer"]
    assert [p.name for p in plan_phases(config_from_dict({"finetune": {"epochs": 0}}))] == ["transfer"]
    with pytest.raises(LeafnetError, match="nothing to train"):
        plan_phases(config_from_dict({"transfer": {"epochs": 0}, "finetune": {"blocks": 0}}))


def test_blocks_unfrozen_at_each_epoch():
    cfg = config_from_dict({"finetune": {"blocks": 3, "unfreeze_every": 2, "epochs": 8}})
    ft, tr = Phase("finetune", cfg.finetune), Phase("transfer", cfg.transfer)
    assert [stage_blocks(ft, k, 3, 5) for k in range(8)] == [1, 1, 2, 2, 3, 3, 3, 3]
    assert [stage_blocks(ft, k, "all", 3) for k in range(8)] == [1, 1, 2, 2, "all", "all", "all", "all"]
    assert [stage_blocks(tr, k, 3, 5) for k in range(3)] == [3, 3, 3]          # the transfer phase: no stages
    at_once = Phase("finetune", config_from_dict({"finetune": {"blocks": 2}}).finetune)
    assert [stage_blocks(at_once, k, 2, 5) for k in range(4)] == [2, 2, 2, 2]


def test_mixing_stops_for_the_last_epochs_of_each_phase():
    phase = Phase("transfer", config_from_dict({"transfer": {"epochs": 5}}).transfer)
    assert [mixing(AugmentConfig(mixup=0.2, mix_off_epochs=2), phase, k) for k in range(5)] == \
        [True, True, True, False, False]
    assert [mixing(AugmentConfig(cutmix=1.0), phase, k) for k in range(5)] == [True] * 5
    assert [mixing(AugmentConfig(mix_off_epochs=2), phase, k) for k in range(5)] == [False] * 5


def test_a_fit_call_runs_the_epochs_with_the_same_blocks_and_mixing():
    cfg = config_from_dict({"finetune": {"blocks": 3, "unfreeze_every": 2, "epochs": 7}})
    ft = Phase("finetune", cfg.finetune)
    none = AugmentConfig()
    # stages 1,1 | 2,2 | 3,3,3: from each epoch, the rest of its stage
    assert [segment_epochs(ft, k, 3, 5, none) for k in range(7)] == [2, 1, 2, 1, 3, 2, 1]
    # mixing off for the last 2 epochs cuts the last stage in two
    assert [segment_epochs(ft, k, 3, 5, AugmentConfig(mixup=0.2, mix_off_epochs=2)) for k in range(7)] == \
        [2, 1, 2, 1, 1, 2, 1]
    tr = Phase("transfer", config_from_dict({"transfer": {"epochs": 4}}).transfer)
    assert segment_epochs(tr, 0, 3, 5, none) == 4 and segment_epochs(tr, 3, 3, 5, none) == 1
    assert segment_epochs(tr, 0, 3, 5, none, distributed=True) == 1      # leafnet's steps: one at a time
    ema = Phase("transfer", config_from_dict({"transfer": {"epochs": 4, "use_ema": True}}).transfer)
    assert one_at_a_time(ema, False) and one_at_a_time(tr, True) and not one_at_a_time(tr, False)
    assert segment_epochs(ema, 0, 3, 5, none) == 1


def test_where_each_phase_starts_from_a_state():
    cfg = config_from_dict({"transfer": {"epochs": 3}, "finetune": {"blocks": 3, "unfreeze_every": 2, "epochs": 6}})
    tr, ft = plan_phases(cfg)
    blocks, count = 3, 5
    fresh = TrainState()
    assert phase_start(0, tr, fresh, blocks, count) == PhaseStart(resumed=False, phase_epoch=0, with_optimizer=False,
                                                                  restore_previous=False)
    # killed in transfer epoch 3 (2 done): transfer resumes at phase epoch 2 with its optimizer
    mid = TrainState(phase_index=0, phase_epochs=2, epochs=2, weights="epoch-00002.npz")
    s = phase_start(0, tr, mid, blocks, count)
    assert (s.resumed, s.phase_epoch, s.with_optimizer, s.restore_previous) == (True, 2, True, False)
    # the next phase then starts fresh from the previous phase's final weights
    s = phase_start(1, ft, mid, blocks, count)
    assert (s.resumed, s.phase_epoch, s.with_optimizer, s.restore_previous) == (False, 0, False, True)
    # transfer done: skipped
    done = TrainState(phase_index=0, phase_epochs=3, epochs=3, phase_done=True, weights="epoch-00003.npz")
    assert phase_start(0, tr, done, blocks, count) is None
    assert phase_start(1, ft, done, blocks, count).restore_previous
    # fine-tune killed after 2 of its epochs: epoch 2 starts a new stage (2 blocks), so a fresh optimizer
    ft2 = TrainState(phase_index=1, phase_epochs=2, epochs=5, weights="epoch-00005.npz")
    assert phase_start(0, tr, ft2, blocks, count) is None
    s = phase_start(1, ft, ft2, blocks, count)
    assert (s.resumed, s.phase_epoch, s.with_optimizer) == (True, 2, False)
    ft3 = TrainState(phase_index=1, phase_epochs=3, epochs=6, weights="epoch-00006.npz")
    assert phase_start(1, ft, ft3, blocks, count).with_optimizer             # epoch 3: same stage as epoch 2
    # a run whose first phase had no epochs to restore from
    assert not phase_start(1, ft, TrainState(phase_index=0, phase_done=True), blocks, count).restore_previous
