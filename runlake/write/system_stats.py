"""System metrics, sampled the way W&B's system monitor does and under its key names: the
process tree's CPU, memory and threads, the machine's memory, disk and network (psutil), NVIDIA
GPUs through `nvidia-ml-py` and AMD GPUs through `amdsmi` when they are importable and find a
device. One sample is a dict `system.<name>` -> number; a sampler never raises (a probe that
fails is left out of that sample)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

_MB = 1024 * 1024
_GB = 1024 * 1024 * 1024


class Probe:
    """What one process samples; made once per run (its counters start there, as W&B's)."""

    def __init__(self, disk_paths: tuple[str, ...] = ("/",)) -> None:
        import psutil

        self.psutil = psutil
        self.process = psutil.Process(os.getpid())
        self.disk_paths = disk_paths
        self.cpus = psutil.cpu_count() or 1
        net = _quiet(psutil.net_io_counters)
        self.net0 = (net.bytes_sent, net.bytes_recv) if net is not None else None
        disk = _quiet(psutil.disk_io_counters)
        self.disk0 = (disk.read_bytes, disk.write_bytes) if disk is not None else None
        with contextlib.suppress(Exception):
            self.process.cpu_percent(None)  # the first call only starts the measurement
        self.gpus = _nvidia() or _amd()

    def sample(self) -> dict[str, float]:
        psutil = self.psutil
        out: dict[str, float] = {}
        with contextlib.suppress(Exception):
            procs = [self.process, *self.process.children(recursive=True)]
            rss = threads = cpu = 0.0
            for proc in procs:
                with contextlib.suppress(Exception):
                    with proc.oneshot():
                        rss += proc.memory_info().rss
                        threads += proc.num_threads()
                        cpu += proc.cpu_percent(None)
            total = psutil.virtual_memory().total
            out["system.proc.memory.rssMB"] = rss / _MB
            out["system.proc.memory.percent"] = 100.0 * rss / total if total else 0.0
            out["system.proc.cpu.threads"] = threads
            out["system.cpu"] = cpu / self.cpus  # W&B: the process tree's share of all cores
        with contextlib.suppress(Exception):
            memory = psutil.virtual_memory()
            out["system.memory_percent"] = float(memory.percent)
            out["system.proc.memory.availableMB"] = memory.available / _MB
        with contextlib.suppress(Exception):
            for i, value in enumerate(psutil.cpu_percent(interval=None, percpu=True)):
                out[f"system.cpu.{i}.cpu_percent"] = float(value)
        for path in self.disk_paths:
            with contextlib.suppress(Exception):
                usage = psutil.disk_usage(path)
                out[f"system.disk.{path}.usagePercent"] = float(usage.percent)
                out[f"system.disk.{path}.usageGB"] = usage.used / _GB
        if self.disk0 is not None:
            with contextlib.suppress(Exception):
                disk = psutil.disk_io_counters()
                out["system.disk.in"] = (disk.read_bytes - self.disk0[0]) / _MB
                out["system.disk.out"] = (disk.write_bytes - self.disk0[1]) / _MB
        if self.net0 is not None:
            with contextlib.suppress(Exception):
                net = psutil.net_io_counters()
                out["system.network.sent"] = float(net.bytes_sent - self.net0[0])
                out["system.network.recv"] = float(net.bytes_recv - self.net0[1])
        if self.gpus is not None:
            with contextlib.suppress(Exception):
                out.update(self.gpus())
        return out


def _quiet(fn: Any) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


def _per_device(handles: list[Any], probes: list[Any]) -> Any:
    """A sampler of `handles` (GPUs): each probe (handle, index) -> {key: value} is asked for
    every device, and one that fails leaves its keys out of that sample."""

    def sample() -> dict[str, float]:
        out: dict[str, float] = {}
        for i, handle in enumerate(handles):
            for probe in probes:
                with contextlib.suppress(Exception):
                    out.update(probe(handle, f"system.gpu.{i}."))
        return out

    return sample if handles else None


def _nvidia() -> Any:
    """A sampler of NVIDIA GPUs (W&B's names), or None without nvidia-ml-py or a device."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - no driver, no device
        return None

    def utilisation(handle: Any, key: str) -> dict[str, float]:
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        return {key + "gpu": float(util.gpu), key + "memory": float(util.memory)}

    def memory(handle: Any, key: str) -> dict[str, float]:
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {
            key + "memoryAllocated": 100.0 * mem.used / mem.total,
            key + "memoryAllocatedBytes": float(mem.used),
        }

    def temperature(handle: Any, key: str) -> dict[str, float]:
        return {key + "temp": float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))}

    def power(handle: Any, key: str) -> dict[str, float]:
        watts = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        limit = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
        return {
            key + "powerWatts": watts,
            key + "enforcedPowerLimitWatts": limit,
            key + "powerPercent": 100.0 * watts / limit if limit else 0.0,
        }

    return _per_device(handles, [utilisation, memory, temperature, power])


def _amd() -> Any:
    """A sampler of AMD GPUs through amdsmi (W&B's names), or None."""
    try:
        import amdsmi
    except ImportError:
        return None
    try:
        amdsmi.amdsmi_init()
        handles = list(amdsmi.amdsmi_get_processor_handles())
    except Exception:  # noqa: BLE001 - no driver, no device
        return None

    def activity(handle: Any, key: str) -> dict[str, float]:
        found = amdsmi.amdsmi_get_gpu_activity(handle)
        return {key + "gpu": float(found["gfx_activity"]), key + "memory": float(found["umc_activity"])}

    def memory(handle: Any, key: str) -> dict[str, float]:
        used = amdsmi.amdsmi_get_gpu_memory_usage(handle, amdsmi.AmdSmiMemoryType.VRAM)
        total = amdsmi.amdsmi_get_gpu_memory_total(handle, amdsmi.AmdSmiMemoryType.VRAM)
        return {
            key + "memoryAllocated": 100.0 * used / total if total else 0.0,
            key + "memoryAllocatedBytes": float(used),
        }

    return _per_device(handles, [activity, memory])
