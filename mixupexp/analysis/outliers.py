"""Runs far from the rest of their arm, by a robust rule that a run far off cannot hide from.

A run is named when its test accuracy x lies more than CUTOFF robust sds from the median of its arm's finished
runs: |x - median| > CUTOFF * 1.4826 * MAD, MAD the median absolute deviation from the median (1.4826 MAD is
the sd of normal data). This is the modified z-score of B. Iglewicz and D. C. Hoaglin (1993), "How to Detect
and Handle Outliers", ASQC, with their cutoff of 3.5. The median and the MAD move little when one run
collapses, where the mean and the sd it would be judged by move with it. Arms of fewer than MIN_RUNS finished
runs, or with a MAD of 0 (half or more of the runs tied), are not judged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

CUTOFF = 3.5
MAD_TO_SD = 1.4826
MIN_RUNS = 5
RULE = (f"|accuracy - median| > {CUTOFF:g} × {MAD_TO_SD} × MAD of the arm's finished runs (at least {MIN_RUNS}; "
        "the modified z-score of Iglewicz and Hoaglin)")


def outlying(runs: Mapping[int, float]) -> list[int]:
    """The keys (seeds) of the runs far from the rest of their arm; NaN (failed) runs are left out."""
    finished = {key: acc for key, acc in runs.items() if not math.isnan(acc)}
    if len(finished) < MIN_RUNS:
        return []
    values = np.array(list(finished.values()))
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    if mad == 0:
        return []
    return [key for key, acc in finished.items() if abs(acc - median) > CUTOFF * MAD_TO_SD * mad]
