"""Fault injection: one real case of each class of fault an attacker or a clumsy user can cause.

Every case uses real files (and real processes where a process is what fails) and checks the
outcome the product promises: nothing runs from a file, nothing the user made is lost, one writer
per run folder, no silently wrong result, and a one-line error instead of a traceback. The figures
of the whole pass are in docs/faults.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glyphcore import cli
from glyphcore.checkpoint import save_checkpoint

WORKTREE = Path(__file__).resolve().parent.parent
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's ImageNet weights, as torch hub names them in its cache


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(WORKTREE), **extra}
    return env


def _glyph(path: Path, letter_box: tuple[int, int, int, int] = (30, 20, 70, 80)) -> Path:
    """A white-on-black blob image, enough for the preprocessing to find ink."""
    img = np.zeros((100, 100), np.uint8)
    x0, y0, x1, y1 = letter_box
    img[y0:y1, x0:x0 + 8] = 255
    img[y0:y0 + 8, x0:x1] = 255
    Image.fromarray(img).save(path)
    return path


# ------------------------------------------------------------------------------------------------
# 1. A checkpoint never runs code and never reaches torch hub
# ------------------------------------------------------------------------------------------------


class _Payload:
    """Pickled, it runs ``exec`` on load: the attack a weights_only=False load would fall for."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture
def hub_trap(tmp_path, monkeypatch) -> Path:
    """A TORCH_HOME whose hub cache holds a malicious file under resnet18's weights name.

    Returns:
        The marker file the pickle writes if it is ever unpickled.
    """
    torch_home = tmp_path / "torch-home"
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    marker = tmp_path / "code-ran.txt"
    torch.save(_Payload(marker), cache / RESNET18_FILE)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.delenv("TORCH_HUB", raising=False)
    return marker


def _pretrained_resnet_checkpoint(path: Path, classes: list[str], size: int, data: str = "glyphs-52") -> Path:
    """A data-only checkpoint (it passes a weights_only load) whose model_args ask for ImageNet weights."""
    from glyphcore.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=len(classes), in_channels=1, input_size=size)
    args = {**model.glyph_args, "pretrained": True}
    save_checkpoint({"model_name": "resnet18", "model_args": args, "classes": classes, "frame": None,
                     "config": {"data": data, "model": "resnet18"}, "dataset": {"id": data, "hash": None},
                     "state_dict": {k: v.clone() for k, v in model.state_dict().items()}, "epoch": 1}, path)
    return path


def test_the_hub_trap_is_live(hub_trap):
    """The planted file really runs code when torch hub loads it as torch does by default, so the
    tests below that find no marker prove the protection, not a dud trap."""
    from torchvision.models import ResNet18_Weights

    torch.hub.load_state_dict_from_url(ResNet18_Weights.IMAGENET1K_V1.url, progress=False)
    assert hub_trap.read_text() == "ran"


def test_user_pretrained_refuses_a_planted_hub_file(hub_trap):
    from glyphcore.errors import ConfigError
    from glyphcore.models import create_model

    with pytest.raises(ConfigError, match="sha256"):
        create_model("resnet18", num_classes=4, in_channels=1, input_size=28, pretrained=True)
    assert not hub_trap.exists()


def test_load_predictor_never_loads_pretrained(hub_trap, tmp_path):
    """What the Draw, Evaluate and Activations pages call."""
    from glyphcore.infer import load_predictor

    ckpt = _pretrained_resnet_checkpoint(tmp_path / "crafted.pt", LETTERS, 64)
    predictor = load_predictor(ckpt)
    weights = torch.load(ckpt, weights_only=True)["state_dict"]
    assert torch.equal(predictor.model.state_dict()["conv1.weight"].cpu(), weights["conv1.weight"])
    assert predictor.model.glyph_args["pretrained"] is False
    assert not hub_trap.exists()


def test_predict_cli_process_never_loads_pretrained(hub_trap, tmp_path):
    ckpt = _pretrained_resnet_checkpoint(tmp_path / "crafted.pt", LETTERS, 64)
    img = _glyph(tmp_path / "a.png")
    proc = subprocess.run([sys.executable, "-m", "glyphcore", "predict", "--run", str(ckpt), str(img)],
                          cwd=WORKTREE, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(img))
    assert "Downloading" not in proc.stdout + proc.stderr
    assert not hub_trap.exists()


def test_evaluate_cli_never_loads_pretrained(hub_trap, tmp_path, tiny_glyphs, capsys):
    ckpt = _pretrained_resnet_checkpoint(tmp_path / "crafted.pt", LETTERS, 64)
    assert cli.main(["evaluate", str(ckpt), "--split", "test", "--device", "cpu"]) == 0
    assert "accuracy" in capsys.readouterr().out.lower()
    assert not hub_trap.exists()


def test_init_from_never_loads_pretrained(hub_trap, tmp_path, monkeypatch, capsys):
    """``train --init-from`` a crafted file, even with the user's pretrained option: the weights come
    from the file, so nothing is fetched from the hub cache for them."""
    from shapes_data import CLASSES, write_course_layout

    root = write_course_layout(tmp_path / "course", {"train": 12, "valid": 8})
    ckpt = _pretrained_resnet_checkpoint(tmp_path / "crafted.pt", CLASSES, 28, data=f"course:{root}")
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path / "runs"))
    code = cli.main(["train", "--data", f"course:{root}", "--model", "resnet18", "--model-options",
                     '{"pretrained": true}', "--init-from", str(ckpt), "--epochs", "1", "--batch-size", "12",
                     "--threads", "1", "--device", "cpu", "--run-dir", str(tmp_path / "runs" / "ft"),
                     "--progress", "off"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Initialised" in (tmp_path / "runs" / "ft" / "metrics.jsonl").read_text()
    assert not hub_trap.exists()


# ------------------------------------------------------------------------------------------------
# 2. Nothing the user made is deleted or overwritten without a flag
# ------------------------------------------------------------------------------------------------


def test_data_build_refuses_a_foreign_folder(tmp_path, capsys):
    mine = tmp_path / "my-files"
    mine.mkdir()
    (mine / "thesis.txt").write_text("two years of work")
    assert cli.main(["data", "build", "--out", str(mine), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not a glyphs-52 build" in err and len(err.strip().splitlines()) == 1
    assert (mine / "thesis.txt").read_text() == "two years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-files"]  # no temporary folder left either


def test_data_build_replaces_an_older_build_only(tmp_path):
    from glyphcore.data import build_glyphs52
    from glyphcore.data.fonts import sample_fonts
    from glyphcore.errors import DataError

    out = tmp_path / "glyphs-52"
    build_glyphs52(out, per_class=(1, 1, 1), seen_per_class=0, fonts=sample_fonts())
    (out / "note.txt").write_text("kept with the build")  # a build folder, whatever else is in it
    build_glyphs52(out, per_class=(1, 1, 1), seen_per_class=0, seed=1, fonts=sample_fonts())
    assert not (out / "note.txt").exists() and (out / "manifest.json").is_file()
    (out / "manifest.json").write_text('{"name": "something-else"}')
    with pytest.raises(DataError, match="not a glyphs-52 build"):
        build_glyphs52(out, per_class=(1, 1, 1), seen_per_class=0, fonts=sample_fonts())
    assert (out / "manifest.json").read_text() == '{"name": "something-else"}'


@pytest.fixture
def course(tmp_path) -> str:
    from shapes_data import write_course_layout

    return f"course:{write_course_layout(tmp_path / 'course', {'train': 40, 'valid': 20})}"


def _train(course: str, run_dir: Path, *extra: str) -> int:
    return cli.main(["train", "--data", course, "--model", "lenet", "--epochs", "1", "--batch-size", "20",
                     "--threads", "1", "--device", "cpu", "--lr", "2e-3", "--run-dir", str(run_dir),
                     "--progress", "off", *extra])


def test_train_refuses_an_existing_run_without_resume_or_overwrite(course, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(course, run) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert _train(course, run, "--seed", "7") == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert _train(course, run, "--seed", "7", "--overwrite") == 0
    import json

    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in x]
    assert [e["epoch"] for e in epochs if e["event"] == "epoch"] == [1]  # one fresh run, not appended
    assert json.loads((run / "config.json").read_text())["seed"] == 7


def test_the_starter_is_never_overwritten(course, starter_copy, capsys):
    before = {p.name: p.read_bytes() for p in starter_copy.iterdir() if p.is_file()}
    for extra in ((), ("--overwrite",), ("--resume",)):
        assert _train(course, starter_copy, *extra) == 2
        assert "starter run is read-only" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in starter_copy.iterdir() if p.is_file()} == before


def test_run_dir_naming_a_file_is_a_clear_error(course, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    assert _train(course, f) == 2
    assert "is a file" in capsys.readouterr().err
    assert f.read_text() == "mine"


def test_orphan_temporary_files_are_cleaned_when_training_starts(course, tmp_path):
    run = tmp_path / "run"
    assert _train(course, run) == 0
    orphan = run / ".last.pt.k2j4h1xz.tmp"  # what a SIGKILL during the checkpoint write leaves
    orphan.write_bytes(b"\0" * 100_000)
    young_other = run / ".status.json.abcd1234.tmp"  # another writer's, still being written
    young_other.write_text("{")
    assert _train(course, run, "--resume", "--epochs", "2") == 0
    assert not orphan.exists()
    assert young_other.exists()


def test_a_full_disk_stops_the_run_at_once_with_disk_full(course, tmp_path, monkeypatch, capsys):
    """The last.pt of epoch 2 cannot be written: the run stops in epoch 3 (not after it), says
    "disk full", and last.pt of epoch 1 is intact to resume from."""
    import errno
    import json

    from glyphcore.checkpoint import load_checkpoint
    from glyphcore.train import state as state_mod

    real = state_mod.save_checkpoint
    calls: list[str] = []

    def save(payload, path):
        calls.append(Path(path).name)
        if Path(path).name == "last.pt" and payload["epoch"] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(payload, path)

    monkeypatch.setattr(state_mod, "save_checkpoint", save)
    run = tmp_path / "run"
    assert _train(course, run, "--epochs", "5") == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "last.pt" in err
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "disk full" in status["message"]
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(e["epoch"] for e in epochs if e["event"] == "epoch") == 2  # epoch 3 never finished
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    monkeypatch.setattr(state_mod, "save_checkpoint", real)
    assert _train(course, run, "--resume", "--epochs", "3") == 0
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs if e["event"] == "epoch"] == [1, 2, 3]  # epoch 2 redone: 1 lost


# ------------------------------------------------------------------------------------------------
# 3. One writer per run folder
# ------------------------------------------------------------------------------------------------


def _wait(pred, timeout: float = 90.0, what: str = "the condition"):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _status(run: Path) -> dict:
    import json

    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.fixture
def live_run(course, tmp_path):
    """A real training process on a run folder, running (many epochs), killed at the end."""
    run = tmp_path / "live"
    proc = subprocess.Popen(
        [sys.executable, "-m", "glyphcore", "train", "--data", course, "--model", "lenet", "--epochs", "500",
         "--batch-size", "20", "--threads", "1", "--device", "cpu", "--run-dir", str(run), "--progress", "off"],
        cwd=WORKTREE, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: _status(run).get("state") == "running" and _status(run).get("epoch", 0) >= 1,
              what="the run to finish an epoch")
        yield run, proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_writer_on_a_live_run_is_refused(live_run, course, capsys):
    import json

    from glyphcore import runs
    from glyphcore.errors import RunError

    run, proc = live_run
    # The status is made to lie ("crashed"), as a reused pid or a lost update could: the lock still tells.
    status = _status(run)
    (run / "status.json").write_text(json.dumps({**status, "state": "crashed"}))
    for extra in (("--resume",), ("--overwrite",), ()):
        assert _train(course, run, *extra) == 2
        assert "being trained by another process" in capsys.readouterr().err
    with pytest.raises(RunError, match="being trained by another process"):
        runs.resume(run)
    assert proc.poll() is None  # the live trainer went on
    assert (run / "metrics.jsonl").stat().st_size > 0 and (run / "last.pt").is_file()


def test_two_resumes_at_the_same_instant_start_one_trainer(course, tmp_path):
    import json

    run = tmp_path / "run"
    assert _train(course, run, "--epochs", "1") == 0
    code = (f"import sys; from glyphcore import runs, errors\n"
            f"try:\n    runs.resume({str(run)!r}, epochs=3); print('started')\n"
            f"except errors.GlyphError as e:\n    print('refused', e)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=WORKTREE, env=_env(), stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].split()[0] for p in procs)
    assert outs == ["refused", "started"]
    _wait(lambda: _status(run).get("state") in ("done", "failed", "crashed"), timeout=120, what="the resumed run")
    assert _status(run)["state"] == "done"
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs if e["event"] == "epoch"] == [1, 2, 3]


def test_a_reused_pid_is_not_this_runs_process(tmp_path):
    """A live process whose command line looks like glyphcore's but started at another time than the
    one recorded: the run reads as crashed, and cancel does not signal that process."""
    from glyphcore import runs
    from glyphcore.errors import RunError
    from glyphcore.runs.lock import pid_start_time

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "glyphcore", "train"])
    try:
        start = _wait(lambda: pid_start_time(other.pid), what="the process start time")
        run = tmp_path / "runs" / "r1"
        run.mkdir(parents=True)
        runs.write_json_atomic(run / "config.json", {"model": "lenet"})
        runs.write_status(run, {"state": "running", "pid": other.pid, "pid_start": start,
                                "launcher_pid": other.pid, "launcher_pid_start": start})
        assert runs.read_status(run)["state"] == "running"  # the right start time: it is the run's process
        runs.write_status(run, {"state": "running", "pid": other.pid, "pid_start": start - 1,
                                "launcher_pid": other.pid, "launcher_pid_start": start - 1})
        assert runs.read_status(run)["state"] == "crashed"
        with pytest.raises(RunError):
            runs.cancel(run)
        assert other.poll() is None  # not signalled
    finally:
        other.kill()
        other.wait()
