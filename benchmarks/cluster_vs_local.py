"""The sample pipeline as one spark-submit application on ``local[2]`` against the same pipeline on
the local standalone cluster (a master and two 1-core workers on 127.0.0.1, separate JVMs, started
here by ``catalog2vec.standalone``), in one run, per stage; prints the cluster / local ratio.

  .venv/bin/python benchmarks/cluster_vs_local.py            # the bundled sample's 384-item core

Both runs use a local-disk lakehouse (the workers share this machine's disk) and test-sized
training; on the cluster, ``conf/standalone.toml`` trains with 2 TorchDistributor ranks on the
two workers and embeds on both executors. The 2 cores are shared by every JVM, so the ratio is the
cost of the cluster code path (executor launch, task scheduling over RPC, barrier training), not
a speed-up.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def submit(master: str, config: str, root: str, work: Path) -> dict[str, float]:
    from catalog2vec.standalone import submit_command
    from tests.sample import pipeline_result, write_pipeline_driver

    script = write_pipeline_driver(work / f"driver_{abs(hash(master))}.py", root, "bench", "bench", config)
    cmd, env = submit_command(master, [str(script)])
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=3600)
    info = pipeline_result(proc.stdout)
    if proc.returncode or not info:
        sys.exit(f"{master} failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {**dict(info["timings"]), "total (incl. JVM start)": time.time() - t0}


def main() -> int:
    from catalog2vec import standalone as cl

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="c2v-bench-cluster-") as tmp:
        work = Path(tmp)
        results["local[2]"] = submit("local[2]", str(REPO / "conf" / "local.toml"), str(work / "lake-local"), work)
        info = cl.start(work / "cluster", workers=2, cores=1, memory="1500m", timeout=240)
        try:
            results["standalone"] = submit(info.master_url, str(REPO / "conf" / "standalone.toml"),
                                           str(work / "lake-cluster"), work)
        finally:
            cl.stop(work / "cluster")
    print("\n== standalone cluster (2 workers) vs local[2] (same run)")
    print(f"{'stage':<26} {'local[2] s':>10} {'cluster s':>10} {'ratio':>7}")
    for stage, lo in results["local[2]"].items():
        c = results["standalone"][stage]
        print(f"{stage:<26} {lo:10.1f} {c:10.1f} {c / max(lo, 1e-9):7.2f}")
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
                      "load_avg_after": os.getloadavg(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
