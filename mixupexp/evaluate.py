"""`python -m mixupexp.evaluate RUN_DIR [overrides]`: measure a finished run again (runs/reevaluate.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mixupexp.package_check import refuse_shadowed_package  # noqa: E402

refuse_shadowed_package()  # before any import that the shadowing folder would break
from mixupexp.config.schema import ConfigError
from mixupexp.data.datasets import DataError
from mixupexp.runs.reevaluate import EvaluateError, evaluate_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mixupexp.evaluate",
        description="Evaluate a finished run's model.pt again (accuracy, NLL, ECE, FGSM) without training; "
                    "results go to RUN_DIR/evaluations/NAME.json.",
        epilog="examples:\n"
               "  python -m mixupexp.evaluate outputs/runs/RUN 'eval.fgsm_eps=[0.5,16,32]'\n"
               "  python -m mixupexp.evaluate outputs/runs/RUN data=image_folder data.root=/path/to/other_test_set",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="directory of a finished run (holds model.pt)")
    parser.add_argument("overrides", nargs="*", help="data=..., data.KEY=..., eval.fgsm_eps=[...], trainer.device=...")
    parser.add_argument("--name", help="file name of the results (default: the overrides, or 'test')")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        path, results = evaluate_run(args.run_dir, args.overrides, args.name)
    except (EvaluateError, ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    fgsm = "".join(f", FGSM {k[len('fgsm_acc_'):]}/255 {v:.2f}%" for k, v in results.items() if k.startswith("fgsm_acc_"))
    print(f"test_acc {results['test_acc']:.2f}%, NLL {results['test_loss']:.4f}, ECE {results['test_ece']:.2f}%{fgsm}"
          f" -> {path}")


if __name__ == "__main__":
    main()
