"""Monte-Carlo checks of what the sequential sweep's guarantee covers, and what it does not, without training.

Through the real code (`sequential.look` via `sequential_simulation`, and `sequential_estimate.conditional`):

- pruning: a sweep of K configurations with no true effect, run again in its directory with only the best one
  after round r, judged at alpha / K (the directory's family) or at alpha / 1 (re-derived from the command);
- confirmations: a tuning study confirming J successive best configurations, none better than its baseline,
  each at alpha / 2^j or each at alpha;
- collapses: rare runs losing many points at equal means, outside the normal model;
- the estimate of Δ at a "better" stop: the mean at the stop and the conditional estimate, against the truth;
- tuning's selection bias: measured on the validation images of fresh seeds, or by `tune_report.selection_bias`
  on the test images, against the true optimism.

`python -m mixupexp.analysis.guarantee_simulation` prints the figures of docs/statistics.md.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time

import numpy as np

from mixupexp.analysis import sequential as seq
from mixupexp.analysis import sequential_estimate as estimate
from mixupexp.analysis import sequential_simulation as sim


def _rate(r: dict) -> str:
    return f"{100 * r['rate']:.2f} % ± {100 * r['se']:.2f}"


def estimate_bias(effect_sd: float, k: int = 3, stops: int = 300, inner: int = 2000, sd: float = 1.41,
                  rng_seed: int = 0, design: str = seq.DESIGN) -> dict:
    """Sweeps with a true effect of effect_sd sd, those that end better: the relative bias of the mean at the
    stop and of the conditional estimate (with its Monte-Carlo SE), and the share that ended better."""
    design = estimate.Design(level=seq.ALPHA / k, e_value=seq.design_test(design, seq.round_bounds()))
    simulated = estimate.Simulated(design, sims=inner)
    mu = effect_sd * sd
    code, _, means, sds = estimate.Simulated(design, sims=stops * 20, rng_seed=rng_seed + 1).stops(mu, sd)
    better = np.flatnonzero(code == 1)
    chosen = better[:stops]
    conditional = np.array([estimate.conditional(means[i], sds[i], seq.BETTER, design, simulated) for i in chosen])
    found = conditional[np.isfinite(conditional)]
    return {"better": len(better) / len(code), "n": len(chosen), "missing": int((~np.isfinite(conditional)).sum()),
            "raw": float(means[chosen].mean() / mu - 1), "conditional": float(found.mean() / mu - 1),
            "se": float(found.std(ddof=1) / math.sqrt(len(found)) / mu)}


def optimism(image_sd: float, studies: int = 2000, trials: int = 20, seeds: int = 3, fresh: int = 6,
             rng_seed: int = 0) -> dict:
    """Tuning studies of `trials` trials on `seeds` seeds, the best by mean validation accuracy confirmed on
    `fresh` seeds with its baseline. A run's validation accuracy is q + nu + u + e and its test accuracy
    q + tau + u + e' - 1 (the test images a point harder for everyone): q the configuration's quality
    (sd 0.3 points among trials), nu and tau the luck a configuration has on the validation and on the test
    images (sd image_sd, the same at every seed), u the run's own (sd 1, shared by its two accuracies), e and e'
    sd 0.3. The true optimism is the objective minus q of the chosen; it is compared, study by study, with the
    search - fresh validation difference and with `tune_report.selection_bias`."""
    from mixupexp.analysis.selection import selection_bias

    rng = np.random.default_rng(rng_seed)
    true, old, new, ses = [], [], [], []
    for _ in range(studies):
        q = rng.normal(0, 0.3, trials)
        nu, tau = rng.normal(0, image_sd, trials), rng.normal(0, image_sd, trials)
        val = q[:, None] + nu[:, None] + rng.normal(0, 1, (trials, seeds)) + rng.normal(0, 0.3, (trials, seeds))
        best = int(np.argmax(val.mean(axis=1)))
        objective = float(val[best].mean())
        u = rng.normal(0, 1, (2, fresh))
        fresh_val = q[best] + nu[best] + u[0] + rng.normal(0, 0.3, fresh)
        fresh_test = q[best] + tau[best] + u[0] + rng.normal(0, 0.3, fresh) - 1
        base_nu, base_tau = rng.normal(0, image_sd, 2)
        base_gap = (base_nu + u[1] + rng.normal(0, 0.3, fresh)) - (base_tau + u[1] + rng.normal(0, 0.3, fresh) - 1)
        bias, se = selection_bias(objective, list(fresh_test), list(base_gap))
        true.append(objective - q[best]), old.append(objective - fresh_val.mean()), new.append(bias), ses.append(se)
    true, old, new = map(np.asarray, (true, old, new))
    return {"true": float(true.mean()), "old": float(old.mean()), "new": float(new.mean()),
            "new_se": float((new - true).std(ddof=1) / math.sqrt(studies)),
            "old_missed": float(1 - old.mean() / true.mean()), "mean_se": float(np.mean(ses)),
            "sd_error": float((new - true).std(ddof=1))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=4000, help="simulated sweeps per error rate")
    parser.add_argument("--stops", type=int, default=300, help="better stops per line of the estimate's table")
    parser.add_argument("--studies", type=int, default=4000, help="simulated tuning studies per line")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--design", choices=[seq.PLANNED, seq.ANYTIME], default=seq.DESIGN,
                        help=f"the sequential design simulated (hydra.sweeper.design; default {seq.DESIGN})")
    args = parser.parse_args(argv)
    started = time.time()
    print("$ python -m mixupexp.analysis.guarantee_simulation " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)))
    print(f"design: {args.design}")
    grid = sim.Setting(k=8, test_size=500, design=args.design)
    bounds = seq.round_bounds()
    print(f"\nPruned to the best configuration after round r, K = 8, no effect, {args.sims} sweeps "
          "(sd of a paired difference 1.41 points, 1/500 grid): sweeps with any better/worse")
    print("| pruned after | K kept (family.json) | K re-derived (1) |\n| --- | --- | --- |")
    for r in (1, 3, len(bounds) - 1):
        kept = sim.pruned_error_rate(grid, args.sims, r, keep_family=True, rng_seed=args.seed)
        lowered = sim.pruned_error_rate(grid, args.sims, r, keep_family=False, rng_seed=args.seed)
        print(f"| round {r} ({bounds[r]} seeds) | {_rate(kept)} | {_rate(lowered)} |")
    print(f"\nA tuning study confirming 4 successive best configurations, none better, {args.sims} studies:")
    one = sim.Setting(k=1, test_size=500, design=args.design)
    for split in (True, False):
        r = sim.confirmations_error_rate(one, args.sims, 4, split=split, rng_seed=args.seed)
        print(f"  {'alpha / 2^j each' if split else 'alpha each':18s} {_rate(r)}")
    print(f"\nRare collapses at equal means (5 % of a configuration's runs lose 5 points), run noise sd 0.3, "
          f"10 000 test images, {args.sims} sweeps:")
    print("| K | without collapses | with collapses |\n| --- | --- | --- |")
    for k in (1, 8):
        cells = [_rate(sim.error_rate(sim.Setting(k=k, noise_sd=0.3, test_size=10000, collapse_share=share,
                                                  collapse_points=5.0, design=args.design), args.sims, args.seed)) for share in (0, 0.05)]
        print(f"| {k} | {cells[0]} | {cells[1]} |")
    print(f"\nΔ at a 'better' stop, K = 3, paired-difference sd 1.41 points, {args.stops} stops each: bias relative "
          "to the true effect")
    print("| effect | share ending better | mean at the stop | conditional estimate | no estimate |")
    print("| --- | --- | --- | --- | --- |")
    for effect_sd in (0.5, 1.0, 2.0):
        r = estimate_bias(effect_sd, stops=args.stops, rng_seed=args.seed, design=args.design)
        print(f"| {effect_sd:g} sd | {100 * r['better']:.1f} % | {100 * r['raw']:+.1f} % | "
              f"{100 * r['conditional']:+.1f} % ± {100 * r['se']:.1f} | {r['missing']} of {r['n']} |")
    print(f"\nTuning's selection bias, 20 trials x 3 seeds, 6 fresh seeds, {args.studies} studies (points):")
    print("| image sd | true optimism | search - fresh validation (missed) | on test images, the report's | "
          "its mean SE | sd of its error |\n| --- | --- | --- | --- | --- | --- |")
    for image_sd in (0.0, 0.2, 0.4):
        r = optimism(image_sd, args.studies, rng_seed=args.seed)
        print(f"| {image_sd:g} | {r['true']:+.3f} | {r['old']:+.3f} ({100 * r['old_missed']:.0f} %) | "
              f"{r['new']:+.3f} (± {r['new_se']:.3f} against the truth) | {r['mean_se']:.2f} | {r['sd_error']:.2f} |")
    print(f"\n({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
