"""How long a run will take, before it starts: measured on this machine, not guessed.

``measure_speed`` times a few real optimizer steps of the config's model at its batch size, device
and precision on random images of the data's shape (after one warm-up step); ``estimate_run``
turns that speed into the seconds of a whole run: every epoch's training images, plus validation
(a forward pass costs about a third of a training step per image), plus the process start-up.

``lookup_speed`` is what a page calls: it never waits. The measurement runs in a child process
(``measure_in_subprocess``: a big model's memory and thread settings never touch the app's process),
started from a background job; until it lands the lookup says "measuring". A reading expires after
``MAX_AGE_S`` or when the machine's load has changed by ``LOAD_CHANGE`` per core since it was taken,
and is then measured again (the stale figure is still returned meanwhile).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from glyphcore.errors import ConfigError, GlyphError
from glyphcore.infer.nonletter_pool import applies
from glyphcore.jobs import start_job
from glyphcore.train.config import TrainConfig, config_from_dict
from glyphcore.train.device import keep_freed_cpu_memory, resolve_amp, resolve_device
from glyphcore.train.factories import build_model, make_optimizer
from glyphcore.train.nonletters import per_batch

__all__ = [
    "RunEstimate",
    "SpeedReading",
    "SpeedLookup",
    "measure_speed",
    "measure_in_subprocess",
    "lookup_speed",
    "speed_key",
    "machine_load",
    "is_stale",
    "estimate_run",
    "STARTUP_S",
    "EVAL_COST",
    "MAX_AGE_S",
    "LOAD_CHANGE",
]

STARTUP_S = 4.0  # s from Launch to the first step: python, torch and the data set load (measured 3-5 s)
EVAL_COST = 1 / 3  # a validation image costs about a third of a training image (forward only)
MAX_AGE_S = 600.0  # a measured speed older than this is measured again (s)
LOAD_CHANGE = 0.5  # ... and so is one taken when the 1-minute load average per core differed by this much,
LOAD_MIN_AGE_S = 180.0  # once it is this old (s): a load that swings by the minute does not re-measure non-stop
MEASURE_NICE = 10  # the child's niceness: a run that is training keeps its cores while the estimate is measured
MEASURE_TIMEOUT_S = 900.0  # the child process's limit (s): a big model on a busy CPU takes minutes
# The settings that change the speed of a training step; the others (epochs, lr, ...) do not.
SPEED_KEYS = (
    "model",
    "activation",
    "batchnorm",
    "dropout",
    "model_options",
    "batch_size",
    "device",
    "amp",
    "threads",
    "optimizer",
)


@dataclass(frozen=True)
class RunEstimate:
    """The expected length of a run.

    Attributes:
        seconds: whole run, start-up and validation included.
        images_per_s: the measured training speed it rests on.
        steps: optimizer steps in all.
    """

    seconds: float
    images_per_s: float
    steps: int


def measure_speed(config: TrainConfig, shape: tuple[int, int, int], num_classes: int, steps: int = 3) -> float:
    """Training images per second of ``config`` on this machine, from ``steps`` timed optimizer
    steps (after one untimed warm-up step) on random images of ``shape`` (C, H, W).

    Raises:
        ConfigError: a setting the model or the device cannot take (the run would fail the same way).
    """
    device = resolve_device(config.device)
    amp = resolve_amp(config.amp, device)
    if device.type == "cpu":
        keep_freed_cpu_memory()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        torch.manual_seed(0)
        model = build_model(config, shape[0], (shape[1], shape[2]), num_classes)
        model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        optimizer = make_optimizer(config, model, device)
        # outlier exposure's non-letters ride in each step's forward pass (letter data in the glyph frame)
        extra = per_batch(config.batch_size) if config.outlier_exposure and applies(None, shape) else 0
        x = torch.rand((config.batch_size + extra, *shape), device=device).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, num_classes, (config.batch_size + extra,), device=device)
        model.train()
        t0 = 0.0
        for i in range(steps + 1):
            if i == 1:  # the first step allocates and picks kernels: not timed
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=amp) if amp is not None else torch.enable_grad():
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    return steps * config.batch_size / max(seconds, 1e-9)


def estimate_run(config: TrainConfig, n_train: int, n_val: int, images_per_s: float) -> RunEstimate:
    """The seconds of a whole run of ``config`` on ``n_train`` training and ``n_val`` validation
    images at ``images_per_s`` (``measure_speed``'s figure); a time budget caps it."""
    steps_per_epoch = -(-n_train // config.batch_size)
    per_epoch = n_train / images_per_s + EVAL_COST * n_val / images_per_s
    training = config.epochs * per_epoch
    if config.time_budget_min is not None:  # the run stops there (and validates the epoch it cut short)
        training = min(training, 60.0 * config.time_budget_min + EVAL_COST * n_val / images_per_s)
    return RunEstimate(STARTUP_S + training, images_per_s, steps_per_epoch * config.epochs)


@dataclass(frozen=True)
class SpeedReading:
    """One measurement of a config's training speed on this machine.

    Attributes:
        images_per_s: training images per second, or None when the measurement failed.
        error: why it failed (a setting the model or device cannot take), else None.
        measured_at: Unix time (s) the measurement ended.
        load_per_core: the 1-minute load average per core when it started (the measurement's own
            load is not counted).
    """

    images_per_s: float | None
    error: str | None
    measured_at: float
    load_per_core: float


@dataclass(frozen=True)
class SpeedLookup:
    """What a page shows: the latest reading (None before the first) and whether one is being taken."""

    reading: SpeedReading | None
    measuring: bool


_READINGS: dict[str, SpeedReading] = {}  # speed_key -> latest reading, for this process (the app's server)
_READINGS_LOCK = threading.Lock()


def speed_key(config: TrainConfig, shape: tuple[int, int, int], num_classes: int) -> str:
    """The identity of a speed measurement: the settings that change a step's cost, the input shape
    and the class count (epochs or the learning rate do not need a new measurement)."""
    settings = {k: getattr(config, k) for k in SPEED_KEYS}
    return json.dumps({**settings, "shape": list(shape), "classes": num_classes}, sort_keys=True)


def machine_load() -> float:
    """The 1-minute load average per CPU core (0.0 where the OS does not report one)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (OSError, AttributeError):
        return 0.0


def is_stale(reading: SpeedReading, now: float, load_per_core: float) -> bool:
    """True when ``reading`` should be measured again: older than MAX_AGE_S, or older than
    LOAD_MIN_AGE_S and taken under a load that differs from ``load_per_core`` by LOAD_CHANGE or more
    (another run started or ended since)."""
    age = now - reading.measured_at
    load_changed = abs(load_per_core - reading.load_per_core) >= LOAD_CHANGE
    return age > MAX_AGE_S or (age > LOAD_MIN_AGE_S and load_changed)


def measure_in_subprocess(config: TrainConfig, shape: tuple[int, int, int], num_classes: int) -> float:
    """``measure_speed`` in a child Python process: the caller's memory, threads and torch settings
    stay as they are, and a big model (resnet18) costs the caller nothing but the wait.

    Raises:
        ConfigError: the child's refusal of a setting, or its failure (with the last line it wrote).
    """
    request = json.dumps({"config": asdict(config), "shape": list(shape), "classes": num_classes})
    code = "import sys; from glyphcore.train.estimate import main; sys.exit(main())"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, request], capture_output=True, text=True, timeout=MEASURE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"timing the model took over {MEASURE_TIMEOUT_S:.0f} s") from None
    lines = (done.stdout or "").strip().splitlines()
    try:
        answer = json.loads(lines[-1])
        if not isinstance(answer, dict):
            raise ValueError(answer)
    except (IndexError, ValueError):
        last = (done.stderr or "").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise ConfigError(f"timing the model failed: {last[0]}") from None
    if answer.get("error"):
        raise ConfigError(str(answer["error"]))
    ips = answer.get("images_per_s")
    if isinstance(ips, bool) or not isinstance(ips, int | float) or not math.isfinite(ips) or ips <= 0:
        raise ConfigError(f"timing the model gave no speed (got {ips!r})")
    return float(ips)


def main(argv: list[str] | None = None) -> int:
    """The child of ``measure_in_subprocess``: one JSON request in argv, one JSON answer line out."""
    request = json.loads((argv or sys.argv[1:])[0])
    if hasattr(os, "nice"):
        os.nice(MEASURE_NICE)
    try:
        config = config_from_dict(request["config"])
        ips = measure_speed(config, tuple(request["shape"]), int(request["classes"]))
        print(json.dumps({"images_per_s": ips}))
    except (GlyphError, TypeError, ValueError, RuntimeError) as e:  # a setting the model or device refuses
        print(json.dumps({"error": f"{type(e).__name__}: {e}" if not isinstance(e, GlyphError) else str(e)}))
    return 0


def _measure_job(key: str, config: TrainConfig, shape: tuple[int, int, int], num_classes: int, measure: Any) -> Any:
    """A background job's function: measure, and keep the reading (or the refusal) under ``key``."""

    def run(progress: Any) -> SpeedReading:
        load = machine_load()
        try:
            ips, error = float(measure(config, shape, num_classes)), None
        except GlyphError as e:
            ips, error = None, str(e)
        reading = SpeedReading(ips, error, time.time(), load)
        with _READINGS_LOCK:
            _READINGS[key] = reading
        return reading

    return run


def lookup_speed(
    config: TrainConfig,
    shape: tuple[int, int, int],
    num_classes: int,
    *,
    now: float | None = None,
    load_per_core: float | None = None,
    measure: Any = None,
) -> SpeedLookup:
    """The measured speed of ``config`` here, without waiting: the latest reading, and a measurement
    started in the background when there is none or it is stale (``is_stale``).

    Args:
        config: the run's settings (only SPEED_KEYS matter).
        shape: (C, H, W) of the data's images.
        num_classes: the data's class count.
        now: the time to judge the reading's age at (default: now).
        load_per_core: the machine's load to compare with the reading's (default: ``machine_load()``).
        measure: ``f(config, shape, num_classes) -> images/s`` (default: ``measure_in_subprocess``).
    """
    key = speed_key(config, shape, num_classes)
    now = time.time() if now is None else now
    load_per_core = machine_load() if load_per_core is None else load_per_core
    with _READINGS_LOCK:
        reading = _READINGS.get(key)
    if reading is not None and not is_stale(reading, now, load_per_core):
        return SpeedLookup(reading, False)
    job = start_job(f"speed {key}", _measure_job(key, config, shape, num_classes, measure or measure_in_subprocess))
    running = job.running
    if not running:  # it landed between the look above and now
        with _READINGS_LOCK:
            reading = _READINGS.get(key, reading)
    return SpeedLookup(reading, running)
