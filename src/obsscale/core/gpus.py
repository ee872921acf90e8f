"""Which GPUs a job on a workstation uses.

Snakemake counts GPUs (`--resources gpu=N`) but does not say which device a job gets: two one-GPU
jobs running at once would both start on device 0.  `claim_gpus` gives a job devices of its own
before CUDA is touched: it takes a lock file per device (one folder per machine, shared by every
run and user), keeps the locks while the process lives (the kernel drops them when it exits or is
killed) and sets `CUDA_VISIBLE_DEVICES` to the devices it holds.  A job that asks for no GPU gets
none (`CUDA_VISIBLE_DEVICES=""`), so a CPU row of the model sheet never lands on a busy GPU.
Under SLURM the scheduler has already chosen the job's devices and nothing is changed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from obsscale.core.errors import InputError

__all__ = ["GpuClaimError", "claim_gpus", "visible_gpus"]

log = logging.getLogger(__name__)
_HELD: list[int] = []  # file descriptors of the locks this process holds


class GpuClaimError(InputError):
    """A job asks for more GPUs than the machine shows, or none became free in time."""


def default_lock_dir() -> Path:
    return Path(os.environ.get("OBSSCALE_GPU_LOCK_DIR") or Path(tempfile.gettempdir()) / "obsscale-gpu-locks")


def visible_gpus() -> list[str] | None:
    """The devices this process may use: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists;
    None where neither says (no NVIDIA driver)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip()]
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return None
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _try_lock(lock_dir: Path, device: str) -> int | None:
    fd = os.open(lock_dir / f"gpu-{device}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def claim_gpus(n: int, *, visible: list[str] | None = None, lock_dir: str | os.PathLike | None = None,
               timeout: float = 600.0, poll: float = 2.0) -> list[str] | None:
    """Hold `n` free devices for the rest of this process and show only them to CUDA; returns
    their ids, or None where nothing was changed (under SLURM, or no NVIDIA driver)."""
    n = int(n or 0)
    if os.environ.get("SLURM_JOB_ID"):
        return None
    if n == 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return []
    devices = visible if visible is not None else visible_gpus()
    if devices is None:
        return None
    if n > len(devices):
        raise GpuClaimError(f"the job needs {n} GPU(s), this machine shows {len(devices)} "
                            f"({','.join(devices) or 'none'}); lower --resources gpu or the row's gpus")
    lock_dir = Path(lock_dir) if lock_dir else default_lock_dir()
    if not lock_dir.exists():
        lock_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(lock_dir, 0o1777)  # every user of the machine takes locks here
    deadline = time.monotonic() + timeout
    while True:
        fds = {d: fd for d in devices if (fd := _try_lock(lock_dir, d)) is not None}
        if len(fds) >= n:
            mine = list(fds)[:n]
            for d, fd in fds.items():
                if d in mine:
                    _HELD.append(fd)
                else:
                    os.close(fd)
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
            log.info("using GPU(s) %s (CUDA_VISIBLE_DEVICES)", ",".join(mine))
            return mine
        for fd in fds.values():
            os.close(fd)
        if time.monotonic() > deadline:
            raise GpuClaimError(f"no {n} of the GPUs {','.join(devices)} became free within "
                                f"{timeout:.0f} s (locks in {lock_dir}); another job or run holds them")
        time.sleep(poll)
