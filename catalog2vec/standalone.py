"""A Spark standalone cluster on 127.0.0.1 from the installed pyspark: one master and N workers,
each a separate JVM (``bin/spark-class org.apache.spark.deploy.master.Master`` /
``…deploy.worker.Worker``; pip's pyspark ships no ``sbin/start-*.sh``).

Everything lives under one run directory (default ``.standalone/``): ``cluster.json`` (master URL,
web UI, PIDs), each daemon's log and each worker's ``SPARK_WORKER_DIR``. Daemons are stopped by
PID (``stop``), so nothing else on the machine is touched.

    python -m catalog2vec.standalone up        # make standalone-up: master + 2 workers (1 core, 1500 MB each)
    python -m catalog2vec.standalone status    # workers ALIVE, cores, memory (the master's /json/)
    python -m catalog2vec.standalone down      # make standalone-down

Jobs then run with ``spark-submit --master spark://127.0.0.1:<port> jobs/<job>.py …``
(``cluster.json`` has the URL; ``conf/standalone.toml`` holds the matching run configuration).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
STATE_FILE = "cluster.json"


class ClusterError(RuntimeError):
    """The local cluster could not be started (no Java, a daemon died, workers never registered)."""


@dataclass
class ClusterInfo:
    master_url: str
    web_ui: str
    run_dir: str
    master_pid: int
    worker_pids: list[int] = field(default_factory=list)
    worker_cores: int = 1
    worker_memory: str = "1500m"

    def save(self) -> None:
        Path(self.run_dir, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> ClusterInfo:
        path = Path(run_dir, STATE_FILE)
        if not path.is_file():
            raise ClusterError(f"no running cluster recorded in {path}")
        return cls(**json.loads(path.read_text()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def master_state(web_ui: str, timeout: float = 5.0) -> dict[str, Any]:
    """The master's JSON status (``/json/``): workers with state, cores, memory; running apps."""
    with urllib.request.urlopen(f"{web_ui}/json/", timeout=timeout) as resp:
        return dict(json.loads(resp.read()))


def alive_workers(web_ui: str) -> list[dict[str, Any]]:
    try:
        return [w for w in master_state(web_ui).get("workers", []) if w.get("state") == "ALIVE"]
    except OSError:
        return []


def _daemon_env(run_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(run_dir / "logs"),
        "SPARK_PID_DIR": str(run_dir),
        "PYSPARK_PYTHON": env.get("PYSPARK_PYTHON", sys.executable),
        "SPARK_DAEMON_MEMORY": env.get("SPARK_DAEMON_MEMORY", "256m"),
    })
    return env


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        return subprocess.Popen([str(spark_class()), *args], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def start(run_dir: str | os.PathLike[str] = ".standalone", workers: int = 2, cores: int = 1,
          memory: str = "1500m", timeout: float = 90.0) -> ClusterInfo:
    """Start a master and ``workers`` workers; returns once every worker is ALIVE on the master."""
    run = Path(run_dir).resolve()
    run.mkdir(parents=True, exist_ok=True)
    if (run / STATE_FILE).exists():
        info = ClusterInfo.load(run)
        if _alive(info.master_pid) and len(alive_workers(info.web_ui)) >= workers:
            return info  # already up: idempotent
        stop(run)
    try:
        subprocess.run(["java", "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ClusterError(f"java is not available: {exc}") from exc
    env = _daemon_env(run)
    port, ui_port = free_port(), free_port()
    master = _spawn(["org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(port),
                     "--webui-port", str(ui_port)], run / "logs" / "master.out", env)
    info = ClusterInfo(f"spark://{HOST}:{port}", f"http://{HOST}:{ui_port}", str(run), master.pid,
                       worker_cores=cores, worker_memory=memory)
    info.save()
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            master_state(info.web_ui, timeout=2)
            break
        except OSError:
            if master.poll() is not None:
                raise ClusterError(f"master exited (see {run / 'logs' / 'master.out'})") from None
            time.sleep(0.5)
    for i in range(workers):
        wdir = run / f"worker-{i}"
        wdir.mkdir(exist_ok=True)
        wenv = {**env, "SPARK_WORKER_DIR": str(wdir)}
        proc = _spawn(["org.apache.spark.deploy.worker.Worker", "--host", HOST, "--cores", str(cores),
                       "--memory", memory, "--work-dir", str(wdir), "--webui-port", str(free_port()),
                       info.master_url], run / "logs" / f"worker-{i}.out", wenv)
        info.worker_pids.append(proc.pid)
    info.save()
    while time.time() < deadline:
        if len(alive_workers(info.web_ui)) >= workers:
            return info
        time.sleep(0.5)
    stop(run)
    raise ClusterError(f"{workers} workers did not register with {info.master_url} in {timeout:.0f}s "
                       f"(logs in {run / 'logs'})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def submit_command(master: str, args: list[str], executor_memory: str = "1g") -> tuple[list[str], dict[str, str]]:
    """``spark-submit --master <master> <args>`` with this interpreter on the driver and the
    executors (the workers share this machine), and the environment to run it in."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "SPARK_LOCAL_IP": HOST, "PYSPARK_PYTHON": sys.executable,
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    cmd = [str(bin_dir / "spark-submit"), "--master", master, "--conf", f"spark.executor.memory={executor_memory}",
           "--conf", f"spark.pyspark.python={sys.executable}", *args]
    return cmd, env


def kill_worker(info: ClusterInfo, index: int) -> int:
    """SIGKILL one worker JVM (and its executors: its process group). Returns the PID."""
    pid = info.worker_pids[index]
    os.killpg(pid, signal.SIGKILL)
    return pid


def stop(run_dir: str | os.PathLike[str] = ".standalone", timeout: float = 20.0) -> list[int]:
    """Stop the workers, then the master, by PID (their whole process groups: executors included)."""
    run = Path(run_dir).resolve()
    try:
        info = ClusterInfo.load(run)
    except ClusterError:
        return []
    pids = [*info.worker_pids, info.master_pid]
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
    (run / STATE_FILE).unlink(missing_ok=True)
    return pids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog2vec.standalone", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--run-dir", default=".standalone")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="1500m", help="memory per worker")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            info = start(args.run_dir, args.workers, args.cores, args.memory)
            print(f"[cluster] master {info.master_url} (web UI {info.web_ui}), workers {info.worker_pids}")
            print(f"[cluster] spark-submit --master {info.master_url} jobs/build_vocab.py --lakehouse lakehouse")
        elif args.action == "down":
            print(f"[cluster] stopped PIDs {stop(args.run_dir)}")
        else:
            info = ClusterInfo.load(args.run_dir)
            state = master_state(info.web_ui)
            print(json.dumps({"master": info.master_url, "workers": [
                {k: w.get(k) for k in ("id", "state", "cores", "memory", "coresused")} for w in state["workers"]],
                "activeapps": [a.get("name") for a in state.get("activeapps", [])]}, indent=2))
    except (ClusterError, OSError) as exc:
        print(f"[cluster] error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
