"""The planned-look design: its boundary against the schedule's crossing probability, its place between the
fixed t and the anytime-valid test, and its family error by
simulation against the fixed t-test re-run at every look."""

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import stats

from mixupexp.analysis import planned
from mixupexp.analysis import sequential as seq
from mixupexp.analysis import sequential_simulation as sim
from mixupexp.runs.sequential_design import SWEEPER_TARGET
from mixupexp.runs.sequential_summary import sweep_settings

LOOKS = tuple(seq.round_bounds())  # 3, 5, ..., 19, 20


def test_the_nominal_level_is_where_the_schedule_crosses_at_the_level():
    # On a stream the boundary was not computed from, the share of null paths crossing at some look is the level.
    level = 0.05
    p_star = planned.nominal_level(LOOKS, level)
    fresh = planned.min_p_values(LOOKS, 200_000, stream=1)
    crossed = float((fresh <= p_star).mean())
    se = math.sqrt(level * (1 - level) / len(fresh))
    assert level - 5 * se < crossed <= level + 3 * se
    # Each look alone is tested at p*, far below the level: that is the price of 10 looks.
    assert p_star < level / 3


@pytest.mark.parametrize("k", [1, 3, 8])
def test_the_planned_boundary_lies_between_the_fixed_t_and_the_anytime_test(k):
    level = 0.05 / k
    fixed = stats.t.isf(level / 2, 19)
    planned_t = planned.critical_t(20, LOOKS, level)
    assert fixed < planned_t < seq.critical_t_point(20, level)
    # One look only: the planned boundary is the fixed t (up to the calibration's margin).
    assert planned.critical_t(20, (20,), level) == pytest.approx(fixed, rel=0.02)


def test_the_planned_design_has_no_e_value():
    decision = seq.decide([0.5, 1.0, 0.8], level=0.05, e_value=seq.design_test(seq.PLANNED, LOOKS))
    assert decision.testable and math.isnan(decision.log_e)


class FixedT:
    """The fixed-n paired t-test's boundary, used at every look: what the planned boundary corrects."""

    text = "fixed t at every look"

    def critical_t(self, n, level):
        return stats.t.isf(level / 2, np.maximum(np.asarray(n, dtype=float) - 1, 1))

    def log_e(self, t, n):
        return np.zeros(np.broadcast(np.asarray(t), np.asarray(n)).shape)


@dataclasses.dataclass(frozen=True)
class FixedRerun(sim.Setting):
    @property
    def test(self):
        return FixedT()


def error_within_alpha(setting: sim.Setting, sims: int = 20_000) -> bool:
    """The family error of no-effect sweeps (normal differences of sd 1.41 points, every round looked at),
    simulated through the decision rule, is at most alpha (+ 3 Monte-Carlo SE)."""
    result = sim.error_rate(setting, sims, rng_seed=7)
    return result["rate"] <= setting.alpha + 3 * result["se"]


@pytest.mark.parametrize("k", [1, 8])
def test_the_planned_design_keeps_the_family_error_at_alpha_and_the_fixed_t_rerun_does_not(k):
    assert error_within_alpha(sim.Setting(k=k, test_size=None, design=seq.PLANNED))
    assert not error_within_alpha(FixedRerun(k=k, test_size=None))


def test_a_bad_design_names_the_key():
    with pytest.raises(ValueError, match=r"hydra.sweeper.design=sequential must be anytime or planned"):
        seq.decide_sweep({"none": {}, "mixup": {}}, "none", design="sequential")


@pytest.mark.parametrize("recorded, judged", [({}, seq.ANYTIME), ({"design": seq.PLANNED}, seq.PLANNED),
                                              ({"design": seq.ANYTIME}, seq.ANYTIME)])
def test_summarize_judges_a_sweep_by_the_design_it_ran(tmp_path, recorded, judged):
    # A sweep from before the planned design recorded none in its multirun.yaml: it ran with the anytime design.
    sweeper = {"_target_": SWEEPER_TARGET, "max_seeds": 7, **recorded}
    (tmp_path / "multirun.yaml").write_text(json.dumps({"hydra": {"sweeper": sweeper}}))
    settings = sweep_settings([tmp_path])
    assert settings.design == judged and settings.max_seeds == 7
