"""A one-node SLURM cluster on this machine, for the tests that submit to a real controller.

Debian's packages (`apt-get install slurmctld slurmd munge`) provide the daemons. Everything the cluster writes
(its slurm.conf, munge key and socket, spool and state directories, logs) lies in one directory; the daemons run
in the foreground as children of this process and are stopped, and waited for, by `stop()`. No GPUs, no cgroups
(a container has none to give): processes are tracked by their process group, and CPUs are the machine's.

`python tests/slurm_cluster.py` starts one, prints the seconds it took, `sinfo`, and stops it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "sbatch", "squeue", "scontrol", "scancel")
PARTITION = "debug"
NODE = "localhost"


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be started here (binaries missing, not root, a daemon that would not come up)."""


def why_unavailable() -> Optional[str]:
    """Why a cluster cannot be started on this machine, or None if it can be tried."""
    missing = [name for name in DAEMONS + CLIENTS if _binary(name) is None]
    if missing:
        return (f"SLURM is not installed ({', '.join(missing)} not found; Debian: apt-get install slurmctld slurmd "
                f"munge)")
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    return None


def _binary(name: str) -> Optional[str]:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,) if p.exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 9 // 10  # slurmd refuses a node that claims more than it has
    return 1024


SLURM_CONF = """\
ClusterName=mixupexp-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MpiDefault=none
LaunchParameters=use_interactive_step
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


@dataclass
class Cluster:
    root: Path
    partition: str = PARTITION
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    startup_seconds: Optional[float] = None
    remove_root: bool = False

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a client command (sbatch, squeue, ...) needs in its environment to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def command(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env})
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def start(self, timeout: float = 60) -> "Cluster":
        started = time.perf_counter()
        for sub in ("state", f"spool/{NODE}", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        if not key.exists():  # a key of this cluster only: the machine's own munge, if any, is left alone
            key.write_bytes(os.urandom(1024))
            os.chmod(key, 0o400)
        socket_path = self.root / "munge" / "munge.socket"
        self.conf.write_text(SLURM_CONF.format(
            node=NODE, ctld_port=_free_port(), slurmd_port=_free_port(), munge_socket=socket_path, root=self.root,
            cpus=self.cpus, memory_mb=_memory_mb(), partition=self.partition))
        try:
            self._spawn("munged", [_binary("munged"), "--foreground", "--force", f"--key-file={key}",
                                   f"--socket={socket_path}", f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                                   f"--log-file={self.root / 'munge' / 'munged.log'}",
                                   f"--seed-file={self.root / 'munge' / 'munged.seed'}"])
            self._wait(lambda: socket_path.exists(), timeout, "munged did not create its socket")
            self._spawn("slurmctld", [_binary("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            self._wait(lambda: self.command("scontrol", "ping", check=False).stdout.count("UP") > 0, timeout,
                       "slurmctld did not answer `scontrol ping`")
            self._spawn("slurmd", [_binary("slurmd"), "-D", "-N", NODE, "-f", str(self.conf)])
            self._wait(self._node_idle, timeout, "the node did not become idle in `sinfo`")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        return self

    def _spawn(self, name: str, argv: list) -> None:
        log = open(self.root / f"{name}.out", "wb")
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env={**os.environ, **self.env}, start_new_session=True)
        log.close()

    def _wait(self, ready, timeout: float, problem: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise ClusterUnavailable(f"{name} exited with {proc.returncode}: {self._tail(name)}")
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"{problem} within {timeout:.0f} s")
            time.sleep(0.2)

    def _tail(self, name: str) -> str:
        for path in (self.root / f"{name}.log", self.root / f"{name}.out", self.root / "munge" / f"{name}.log"):
            if path.exists() and path.stat().st_size:
                return " | ".join(path.read_text(errors="replace").strip().splitlines()[-3:])
        return "(no log)"

    def _node_idle(self) -> bool:
        out = self.command("sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout.split()
        return out[:2] == [NODE, "idle"]

    def jobs(self) -> list[str]:
        """`JOBID STATE` of every job the controller still lists."""
        return self.command("squeue", "-h", "-o", "%i %T", check=False).stdout.split("\n")

    def stop(self, timeout: float = 30) -> None:
        """Cancel what is left, stop the daemons (SIGTERM, then SIGKILL) and wait for each, slurmd first."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.command("scancel", "--full", "--partition", self.partition, check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.processes.pop(name, None)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout)
        self._kill_job_leftovers()
        if self.remove_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_job_leftovers(self) -> None:
        """A job step's processes (slurmstepd and its children) outlive slurmd for a moment: end those of this
        cluster's spool, found by their command line."""
        spool = str(self.root / "spool")
        for proc_dir in Path("/proc").iterdir():
            if not proc_dir.name.isdigit():
                continue
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (proc_dir / "environ").read_bytes()
            except OSError:
                continue
            if "slurmstepd" in cmdline and spool in environ.decode(errors="replace") or (
                    f"SLURM_CONF={self.conf}".encode() in environ and "slurmstepd" in cmdline):
                try:
                    os.kill(int(proc_dir.name), 9)
                except ProcessLookupError:
                    pass


def start_cluster() -> Cluster:
    """A started cluster in a new directory under /tmp (removed by `stop()`): slurmd's sockets lie in its spool
    directory, and a socket's path must stay under 108 characters, which a deep pytest tmp_path can exceed."""
    problem = why_unavailable()
    if problem:
        raise ClusterUnavailable(problem)
    return Cluster(Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp")), remove_root=True).start()


if __name__ == "__main__":
    cluster = start_cluster()
    try:
        print(f"started in {cluster.startup_seconds:.1f} s; SLURM_CONF={cluster.conf}")
        print(cluster.command("sinfo").stdout.strip())
        if "--keep" in sys.argv[1:]:
            input("press Enter to stop it ")
    finally:
        cluster.stop()
