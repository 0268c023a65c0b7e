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


def test_epochs_closed_after_the_one_played_add_into_the_steps_result():
    """What a drain after the horizon closes in the last step is added to its result (counts and amounts summed,
    shares of the epoch played)."""
    from simcore.interface import EpochResult
    from simcore.stepping import merge_results

    def result(epoch, k, parked):
        one = np.array([1.0, 2.0])
        return EpochResult(epoch=epoch, requests=k * one, ttft_sum_s=k * one, ttft_count=k * one,
                           sla_violations=k * one, energy_kwh=k * one, carbon_kg=k * one, water_l=k * one,
                           cost_usd=k * one, parked_share=np.full(2, parked), embodied_carbon_kg=k * one)

    merged = merge_results([result(7, 1.0, 0.25), result(8, 10.0, 0.5), result(9, 100.0, 0.75)])
    assert merged.epoch == 7
    assert np.array_equal(merged.carbon_kg, [111.0, 222.0])
    assert np.array_equal(merged.embodied_carbon_kg, [111.0, 222.0])
    assert np.array_equal(merged.parked_share, [0.25, 0.25])


def test_the_core_and_the_policy_scheduler_import_without_the_rl_extra(tmp_path):
    """gymnasium, pettingzoo and stable-baselines3 are an optional extra: nothing outside the env modules needs
    them (blocked here as if not installed)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\nfor m in ('gymnasium', 'pettingzoo', 'stable_baselines3'): sys.modules[m] = None\n"
            "import run, simcore.stepping, rlenv, rlenv.reward, rlenv.spaces, rlenv.policy_scheduler\n"
            "assert run.main(['--dcs', '4', '--hours', '0.25', '--set', 'nodes_per_dc=12', '--load-scale', '0.001',"
            " '--out', sys.argv[1], '--no-progress']) == 0\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r")],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
