"""How long a start from the decoded image cache takes: `load_data` of an image folder whose cache exists.

    python tests/cache_start_bench.py DATA_ROOT CACHE_DIR [--repeats 7]

DATA_ROOT holds train/<class>/* and test/<class>/* (e.g. CIFAR-10 as JPEG files). The first call decodes the
folder and writes the cache, the second reads it once more (warm-up: the page cache, lazy imports); the calls
after that are timed. Prints the median and the range in seconds, in this process (load_data alone) and in a
fresh process each (python start, imports and load_data: what a run waits for before it trains).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("cache_dir")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from mixupexp.config.compose import compose_config
    from mixupexp.data.datasets import load_data

    cfg = compose_config(["data=image_folder", f"data.root={args.root}", f"data.cache_dir={args.cache_dir}"]).data
    load_data(cfg)  # decodes and caches, unless the cache is there
    load_data(cfg)  # warm-up
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        data = load_data(cfg)
        times.append(time.perf_counter() - started)
    code = ("import time; t = time.perf_counter(); from mixupexp.config.compose import compose_config; "
            "from mixupexp.data.datasets import load_data; "
            f"load_data(compose_config(['data=image_folder', 'data.root={args.root}', "
            f"'data.cache_dir={args.cache_dir}']).data); print(time.perf_counter() - t)")
    processes = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout.split()[-1]) for _ in range(args.repeats)]
    print(f"{len(data.train_labels)} train / {len(data.test_labels)} test images")
    for name, values in (("load_data in this process", times), ("a fresh process (imports + load_data)", processes)):
        print(f"{name}: median {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f}, "
              f"{len(values)} runs)")


if __name__ == "__main__":
    main()
