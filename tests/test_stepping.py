"""simcore.stepping: a run stepped epoch by epoch from outside is the run the engine plays by itself."""
import numpy as np
import pytest

from schedulers.registry import create
from simcore.engine import Engine
from simcore.results import epoch_table
from simcore.stepping import EpochStepper
from tests.conftest import small_config


@pytest.mark.parametrize("cohort_size", ["1", "4"])
def test_stepping_with_a_schedulers_plans_reproduces_its_run(cohort_size):
    cfg = small_config(cohort_size=cohort_size, load_scale="0.05")
    alone = Engine(cfg, create("nearest")).run()
    stepper = EpochStepper(cfg)
    obs = stepper.reset()
    planner = create("nearest")
    planner.reset(stepper.info, np.random.default_rng(0))
    epochs = []
    while not stepper.done:
        result, obs = stepper.step(planner.plan(obs))
        epochs.append(result.epoch)
    assert epochs == list(range(cfg.epochs))
    assert obs is None
    a, b = epoch_table(alone), epoch_table(stepper.record)
    assert a.equals(b)  # event for event the same run: every column of epochs.csv identical
    assert np.array_equal(alone.ttft_s, stepper.record.ttft_s, equal_nan=True)


def test_step_before_reset_and_after_the_end_is_refused():
    stepper = EpochStepper(small_config(hours=0.25))
    with pytest.raises(RuntimeError):
        stepper.step(np.full(stepper.info.plan_shape, 0.25))
    stepper.reset()
    result, obs = stepper.step(np.full(stepper.info.plan_shape, 0.25))
    assert stepper.done and obs is None and result.epoch == 0
    with pytest.raises(RuntimeError):
        stepper.step(np.full(stepper.info.plan_shape, 0.25))
