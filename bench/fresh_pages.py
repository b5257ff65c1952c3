"""First touch of fresh memory: NumPy's huge pages against gridflex's small-page result arrays.

``gridflex.powerflow.memory.result_array`` gives the large, written-once result arrays 4 KB pages
instead of the transparent huge pages NumPy asks for. Whether that pays depends on the machine:
on a VM whose balloon driver reports free memory to the host (Firecracker, and others with
virtio free page reporting), or where the kernel must compact memory for each 2 MB page, the
first touch of huge pages is several times slower. Both are measured side by side here, each
in a fresh interpreter, alternating, after an idle pause (so freed memory has been reported
back to the host, as when ``gridflex simulate`` starts after another program).

Run::

    python bench/fresh_pages.py [--mb 470] [--runs 4] [--idle 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

_CHILD = """
import json, resource, sys, time
import numpy as np
from gridflex.powerflow.memory import result_array
mb, how = int(sys.argv[1]), sys.argv[2]
shape = (mb * 2**20 // 4,)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
a = np.empty(shape, np.float32) if how == "numpy" else result_array(shape, np.float32)
a[:: 4096 // 4] = 0.0
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": time.perf_counter() - t0, "sys_s": r1.ru_stime - r0.ru_stime,
                  "faults": r1.ru_minflt - r0.ru_minflt}))
"""


def _one(mb: int, how: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(mb), how], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mb", type=int, default=470, help="array size (default: the 8500-node year's results)"
    )
    parser.add_argument("--runs", type=int, default=4, help="runs of each (alternating)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of pause before each run")
    args = parser.parse_args(argv)
    got: dict[str, list[dict[str, float]]] = {"numpy": [], "result_array": []}
    for _ in range(args.runs):
        for how in got:
            time.sleep(args.idle)
            got[how].append(_one(args.mb, how))
    print(f"first touch of {args.mb} MB, {args.runs} fresh processes each (median, range):")
    for how, runs in got.items():
        wall = [r["wall_s"] for r in runs]
        sys_s = [r["sys_s"] for r in runs]
        print(
            f"  {how:13s} wall {statistics.median(wall):.3f} s ({min(wall):.3f}-{max(wall):.3f}), "
            f"system {statistics.median(sys_s):.3f} s, page faults {int(runs[0]['faults'])}"
        )
    ratio = statistics.median(r["wall_s"] for r in got["numpy"]) / statistics.median(
        r["wall_s"] for r in got["result_array"]
    )
    print(f"  NumPy's huge pages / result_array's small pages: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
