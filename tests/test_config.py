"""simcore.config: the defaults are SPEC's and valid, every field has help and its unit in its name, a bad value
is refused with a ConfigError naming the field, and text / JSON values parse into the field's type."""
import dataclasses
import json
import math
import re

import pytest

from simcore.config import Config, load_json
from simcore.errors import ConfigError

FIELDS = dataclasses.fields(Config)


def label(f: dataclasses.Field) -> str:
    """How a message names the field: its command-line flag, else `name=`."""
    flag = f.metadata["allowed"].flag
    return f"{flag} " if flag else f"{f.name}="


# --- defaults ------------------------------------------------------------------------------------------------
def test_defaults_are_valid_and_round_trip():
    cfg = Config()
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # config.json holds every field, by name
    assert set(cfg.to_dict()) == {f.name for f in FIELDS}


def test_spec_defaults():
    c = Config()
    assert (c.dcs, c.epoch_s, c.hours, c.epochs, c.horizon_s) == (8, 900.0, 24.0, 96, 86400.0)  # SPEC 1
    assert (c.lambda_media_ms_per_km, c.sigma_hop_ms, c.sla_ttft_s, c.ttft_model) == (0.005, 1.0, 2.0, "prefill")  # 5
    assert c.pc_parked == 0.05 and c.pc_pstates == (1.0, 0.8, 0.6, 0.4)  # SPEC 6, Eq. 4-5
    assert c.pstate_busy_limits == (0.75, 0.5, 0.25)
    assert (c.cooling_multiplier, c.infra_fraction, c.j_water_kj_per_kg, c.phi) == (3.0, 0.13, 2257.0, 0.2)
    assert (c.ei_pot_kwh_per_l, c.ei_waste_kwh_per_l) == (0.0005, 0.0006)
    assert c.gpt4_share == 0.153 and c.weights == (0.25, 0.25, 0.25, 0.25)


def test_config_holds_the_world_only():
    """A scheduler's parameters are its own (`Scheduler.Params`); the world's Config stays small."""
    assert len(FIELDS) <= 70
    prefixes = ("marlin_", "nsga2_", "slit_", "qlearning_", "ddqn_", "actorcritic_", "perllm_", "helix_",
                "splitwise_", "fill_", "reward_", "plan_evaluations", "predictor_mlp_")
    assert not [f.name for f in FIELDS if f.name.startswith(prefixes)]


def test_epochs_and_horizon():
    c = Config(hours=2.0, epoch_s=600.0)
    assert c.epochs == 12 and c.horizon_s == 7200.0


# --- help and units --------------------------------------------------------------------------------------------
# a unit named in a field's help -> what the field's name must hold (docs: "Field names carry their unit")
UNITS = [
    (r"\bGB/s\b", r"_gb_per_s$"),
    (r"\bTB/s\b", r"_tb_per_s$"),
    (r"\bTFLOP/s\b", r"_tflops$"),
    (r"\bGB\b(?!/)", r"_gb$"),
    (r"\bMB\b", r"_mb_"),
    (r"\bin W\b|, W\b", r"_w(_|$)"),
    (r"\bms\b", r"_ms(_|$)"),
    (r"\bkWh/L\b", r"_kwh_per_l$"),
    (r"\bkJ/kg\b", r"_kj_per_kg$"),
    (r", s\b|\bin seconds\b", r"_s$"),
    (r"\bdegree C\b|, C$", r"_c$"),
    (r"\bin hours\b", r"hours$"),
]
SUFFIXES = r"_(s|ms|gb|mb|w|kwh|l|kg|usd|c|gb_per_s|tb_per_s)$"


def test_every_field_has_help():
    rows = Config.help_table()
    assert [r[0] for r in rows] == [f.name for f in FIELDS]
    for name, default, text in rows:
        assert len(text.split()) >= 2, name  # a phrase, not a placeholder
        json.dumps(default)  # the docs and config.json can print it


def test_a_unit_in_the_help_is_in_the_name():
    matched = set()
    for f in FIELDS:
        for unit, suffix in UNITS:
            if re.search(unit, f.metadata["help"]):
                assert re.search(suffix, f.name), f"{f.name}: help names {unit!r}, the name lacks {suffix!r}"
                matched.add(f.name)
    # the rule really applied: times, sizes, power, latency, water and heat all have fields
    assert {"epoch_s", "sla_ttft_s", "cohort_bin_s", "gpu_mem_gb", "model_weights_gb", "gpu_tdp_w",
            "host_tdp_w_per_gpu", "sigma_hop_ms", "lambda_media_ms_per_km", "load_bw_gb_per_s",
            "ei_pot_kwh_per_l", "j_water_kj_per_kg", "cop_ref_wet_bulb_c", "hours"} <= matched


def test_a_unit_suffix_marks_a_number():
    for f in FIELDS:
        if re.search(SUFFIXES, f.name):
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            assert kind in ("int", "float") or (kind == "tuple" and all(
                isinstance(x, (int, float)) for x in f.default)), f.name


# --- validation ------------------------------------------------------------------------------------------------
def out_of_range(f: dataclasses.Field):
    """Values each field must refuse, from what it declares: past each bound, not finite, not a choice."""
    a = f.metadata["allowed"]
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    bad = []
    if a.lo is not None:
        bad.append(a.lo if a.lo_open else a.lo - 1)
    if a.hi is not None:
        bad.append(a.hi if a.hi_open else a.hi + 1)
    if kind == "float" or (kind == "tuple" and f.default and isinstance(f.default[0], float)):
        bad.append(math.nan)
    if a.choices is not None:
        bad.append("nonsense")
    if kind == "int":
        bad = [int(x) if isinstance(x, float) and math.isfinite(x) and x.is_integer() else x for x in bad]
        bad.append(1.5)
    if kind == "tuple":
        return [(x,) + tuple(f.default[1:]) if f.default else (x,) for x in bad]
    return bad


CASES = [(f, v) for f in FIELDS for v in out_of_range(f)]


def test_the_generic_cases_cover_the_fields():
    assert len({f.name for f, _ in CASES}) > 0.8 * len(FIELDS)


@pytest.mark.parametrize("f, value", CASES, ids=[f"{f.name}={v!r}" for f, v in CASES])
def test_a_value_outside_what_a_field_declares_is_refused_naming_it(f, value):
    with pytest.raises(ConfigError) as err:
        Config(**{f.name: value})
    assert str(err.value).startswith(label(f)), str(err.value)
    assert "must be" in str(err.value)


@pytest.mark.parametrize("changes, message", [
    (dict(dcs=3), "--dcs 3: must be a whole number in [4, 12]"),
    (dict(dcs=True), "--dcs True: must be a whole number in [4, 12]"),
    (dict(hours=0.3), "--hours 0.3: must be a whole number of 900-s epochs"),
    (dict(weights=(0.5, 0.5, 0.5, 0.5)), "--weights 0.5,0.5,0.5,0.5: must sum to 1 (they sum to 2)"),
    (dict(sla_ttft_s=0.0), "sla_ttft_s=0.0: must be a positive number"),
    (dict(phi=1.0), "phi=1.0: must be a number in [0, 1)"),
    (dict(gpu_mem_gb=(80.0,)), "gpu_mem_gb=80.0: must be 2 entries (one per gpu_types entry), each a positive "
                               "number (got 1)"),
    (dict(cohort_size="1.5"), "--cohort-size '1.5': must be 'auto' or a whole number >= 1"),
    (dict(load_scale="-1"), "--load-scale '-1': must be 'auto' or a positive number"),
    (dict(cop_min=9.0), "cop_min=9.0, cop_max=8.0: must satisfy cop_min <= cop_max"),
    (dict(pc_pstates=(1.0, 0.6, 0.8, 0.4)), "pc_pstates=1.0,0.6,0.8,0.4: must be P0 down to P3, non-increasing"),
    (dict(model_weights_gb=(13.5, 900.0)), "Llama-2-70B needs 901.2 GB"),
])
def test_relations_and_messages(changes, message):
    with pytest.raises(ConfigError) as err:
        Config(**changes)
    assert str(err.value).startswith(message)


def test_bounds_themselves_are_accepted():
    assert Config(dcs=4).dcs == 4 and Config(dcs=12).dcs == 12
    assert Config(phi=0.0).phi == 0.0
    assert Config(cohort_size="1").cohort_size == "1"


def test_config_is_frozen_and_replace_validates():
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.dcs = 5
    d = c.replace(dcs=5, weights=(0.7, 0.1, 0.1, 0.1))
    assert d.dcs == 5 and d.weights == (0.7, 0.1, 0.1, 0.1) and d.seed == c.seed
    with pytest.raises(ConfigError, match="--dcs 13"):
        c.replace(dcs=13)


# --- text and JSON values ----------------------------------------------------------------------------------------
def test_from_dict_parses_text_into_the_field_types():
    c = Config.from_dict({"dcs": "6", "hours": "1", "weights": "0.4, 0.2,0.2,0.2", "gpu_counts": "8",
                          "gpu_types": "A100-80GB, H100-80GB", "seed": "1e3", "epoch_s": 600})
    assert c.dcs == 6 and type(c.dcs) is int
    assert c.hours == 1.0 and type(c.hours) is float
    assert c.weights == (0.4, 0.2, 0.2, 0.2)
    assert c.gpu_counts == (8,)  # one number is a one-entry tuple, never split into characters
    assert c.gpu_types == ("A100-80GB", "H100-80GB")  # text entries, stripped
    assert c.seed == 1000 and c.epoch_s == 600.0


@pytest.mark.parametrize("values, message", [
    ({"dcs": "6.5"}, "--dcs 6.5: must be a whole number"),
    ({"dcs": 6.5}, "--dcs 6.5: must be a whole number"),
    ({"weights": "a,b"}, "--weights a,b: must be 4 entries"),
    ({"nosuch": 1, "other": 2, "dcs": 5}, "config: unknown parameter(s) nosuch, other"),
    ({"dcs": [4]}, "--dcs [4]: must be a whole number"),  # a list for a number, shown as given
])
def test_from_dict_refuses_what_it_cannot_read(values, message):
    with pytest.raises(ConfigError) as err:
        Config.from_dict(values)
    assert str(err.value).startswith(message)


def test_load_json(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"dcs": 6, "weights": [0.4, 0.2, 0.2, 0.2]}')
    assert Config.from_dict(load_json(good)).weights == (0.4, 0.2, 0.2, 0.2)
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "dcs": 6,\n}')
    with pytest.raises(ConfigError, match=r"bad.json:3: not valid JSON"):
        load_json(bad)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="one JSON object"):
        load_json(listed)
    with pytest.raises(ConfigError, match="not found"):
        load_json(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="is a directory"):
        load_json(tmp_path)
