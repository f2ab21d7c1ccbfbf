"""The selection bias of a tuning search: how much its best objective overstates the configuration it chose,
measured on images the search never saw (runs/tune_report.py reports it; guarantee_simulation checks it)."""

from __future__ import annotations

import math

import numpy as np


def selection_bias(objective: float, chosen_test: list[float], baseline_gaps: list[float]) -> tuple[float, float]:
    """(bias, its SE), points: how much the search's best objective overstates the chosen configuration,
    measured on images the search never saw.

    The search chose on the validation images, so the chosen configuration's validation accuracy on fresh seeds
    still holds the luck those images gave it; its test accuracy on fresh seeds does not. The test images may
    be harder or easier than the validation images for every configuration alike: that gap is measured on the
    baseline's fresh runs, which the search never chose (val - test, run by run). So

        bias = objective - (mean fresh test accuracy of the chosen + mean val - test gap of the baseline),

    unbiased for the optimism where the validation-test gap is the same for both configurations but for luck of
    their own. The SE is over the fresh seeds: sqrt(s_test^2 / n_chosen + s_gap^2 / n_baseline); the images'
    luck per configuration (the same at every seed) is not in it. NaN where two fresh runs of each are lacking."""
    if len(chosen_test) < 2 or len(baseline_gaps) < 2:
        return math.nan, math.nan
    test, gaps = np.asarray(chosen_test, dtype=float), np.asarray(baseline_gaps, dtype=float)
    bias = objective - (test.mean() + gaps.mean())
    return float(bias), float(math.sqrt(test.var(ddof=1) / len(test) + gaps.var(ddof=1) / len(gaps)))
