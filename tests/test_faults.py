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
from hub_trap import LETTERS, plant_hub_trap, pretrained_resnet_checkpoint
from PIL import Image
from shapes_data import lenet_train_argv

from glyphcore import cli
from glyphcore.checkpoint import save_checkpoint

WORKTREE = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(WORKTREE), **extra}
    return env


def _glyph(path: Path, letter_box: tuple[int, int, int, int] = (30, 20, 70, 80)) -> Path:
    """A white-on-black blob image, enough for the preprocessing to find ink."""
    img = np.zeros((100, 100), np.uint8)
    x0, y0, x1, y1 = letter_box
    img[y0:y1, x0 : x0 + 8] = 255
    img[y0 : y0 + 8, x0:x1] = 255
    Image.fromarray(img).save(path)
    return path


# ------------------------------------------------------------------------------------------------
# 1. A checkpoint never runs code and never reaches torch hub
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def hub_trap(tmp_path, monkeypatch) -> Path:
    """A TORCH_HOME whose hub cache holds a malicious file under resnet18's weights name; returns the
    marker file the pickle writes if it is ever unpickled."""
    return plant_hub_trap(tmp_path, monkeypatch)


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

    ckpt = pretrained_resnet_checkpoint(tmp_path / "crafted.pt", LETTERS, 64)
    predictor = load_predictor(ckpt)
    weights = torch.load(ckpt, weights_only=True)["state_dict"]
    assert torch.equal(predictor.model.state_dict()["conv1.weight"].cpu(), weights["conv1.weight"])
    assert predictor.model.glyph_args["pretrained"] is False
    assert not hub_trap.exists()


@pytest.mark.slow
def test_predict_cli_process_never_loads_pretrained(hub_trap, tmp_path):
    ckpt = pretrained_resnet_checkpoint(tmp_path / "crafted.pt", LETTERS, 64)
    img = _glyph(tmp_path / "a.png")
    proc = subprocess.run(
        [sys.executable, "-m", "glyphcore", "predict", "--run", str(ckpt), str(img)],
        cwd=WORKTREE,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(img))
    assert "Downloading" not in proc.stdout + proc.stderr
    assert not hub_trap.exists()


def test_evaluate_cli_never_loads_pretrained(hub_trap, tmp_path, tiny_glyphs, capsys):
    ckpt = pretrained_resnet_checkpoint(tmp_path / "crafted.pt", LETTERS, 64)
    assert cli.main(["evaluate", str(ckpt), "--split", "test", "--device", "cpu"]) == 0
    assert "accuracy" in capsys.readouterr().out.lower()
    assert not hub_trap.exists()


@pytest.mark.slow
def test_init_from_never_loads_pretrained(hub_trap, tmp_path, monkeypatch, capsys):
    """``train --init-from`` a crafted file, even with the user's pretrained option: the weights come
    from the file, so nothing is fetched from the hub cache for them."""
    from shapes_data import CLASSES, write_course_layout

    root = write_course_layout(tmp_path / "course", {"train": 12, "valid": 8})
    ckpt = pretrained_resnet_checkpoint(tmp_path / "crafted.pt", CLASSES, 28, data=f"course:{root}")
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path / "runs"))
    code = cli.main(
        [
            "train",
            "--data",
            f"course:{root}",
            "--model",
            "resnet18",
            "--model-options",
            '{"pretrained": true}',
            "--init-from",
            str(ckpt),
            "--epochs",
            "1",
            "--batch-size",
            "12",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--run-dir",
            str(tmp_path / "runs" / "ft"),
            "--progress",
            "off",
        ]
    )
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
    return cli.main(lenet_train_argv(course, run_dir, 1, "--lr", "2e-3", *extra))


@pytest.mark.slow
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
    from glyphcore.runfolder.lock import trainer_lock_taken

    assert not trainer_lock_taken(run)  # the finished command let go of the folder


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


@pytest.mark.slow
def test_orphan_temporary_files_are_cleaned_when_training_starts(course, tmp_path):
    run = tmp_path / "run"
    assert _train(course, run) == 0
    orphan = run / ".last.pt.k2j4h1xz.tmp"  # what a SIGKILL during the checkpoint write leaves
    orphan.write_bytes(b"\0" * 100_000)
    # a status.json write killed a moment ago: every status writer beside a trainer holds the status
    # lock, which the cleaning holds too, so a fresh one is an orphan as well
    young_status = run / ".status.json.abcd1234.tmp"
    young_status.write_text("{")
    young_other = run / ".config.json.abcd1234.tmp"  # another file's, maybe still being written
    young_other.write_text("{")
    assert _train(course, run, "--resume", "--epochs", "2") == 0
    assert not orphan.exists() and not young_status.exists()
    assert young_other.exists()


def test_a_full_disk_stops_the_run_at_once_with_disk_full(course, tmp_path, monkeypatch, capsys):
    """The last.pt of epoch 2 cannot be written: the run stops in epoch 3 (not after it), says
    "disk full", and last.pt of epoch 1 is intact to resume from."""
    import contextlib
    import errno
    import json

    from glyphcore import checkpoint as checkpoint_mod
    from glyphcore.checkpoint import load_checkpoint

    real = checkpoint_mod.atomic_write
    last_writes = []

    class FullDisk:
        """The file of the 2nd last.pt write: the disk fills up under it."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data)[:1000])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

    @contextlib.contextmanager
    def atomic_write(path, mode="wb", *, fsync=False):
        with real(path, mode, fsync=fsync) as f:
            if Path(path).name == "last.pt":
                last_writes.append(path)
                if len(last_writes) == 2:
                    yield FullDisk(f)
                    return
            yield f

    monkeypatch.setattr(checkpoint_mod, "atomic_write", atomic_write)
    run = tmp_path / "run"
    assert _train(course, run, "--epochs", "5") == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "last.pt" in err
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "disk full" in status["message"]
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(e["epoch"] for e in epochs if e["event"] == "epoch") == 2  # epoch 3 never finished
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    monkeypatch.setattr(checkpoint_mod, "atomic_write", real)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # the half-written file was removed
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
        [sys.executable, "-m", "glyphcore", *lenet_train_argv(course, run, 500)],
        cwd=WORKTREE,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(
            lambda: _status(run).get("state") == "running" and _status(run).get("epoch", 0) >= 1,
            what="the run to finish an epoch",
        )
        yield run, proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
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


@pytest.mark.slow
def test_two_resumes_at_the_same_instant_start_one_trainer(course, tmp_path):
    import json

    run = tmp_path / "run"
    assert _train(course, run, "--epochs", "1") == 0
    code = (
        f"import sys; from glyphcore import runs, errors\n"
        f"try:\n    runs.resume({str(run)!r}, epochs=3); print('started')\n"
        f"except errors.GlyphError as e:\n    print('refused', e)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=WORKTREE, env=_env(), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
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
    from glyphcore.runfolder.lock import pid_start_time

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "glyphcore", "train"])
    try:
        # until the new process has exec'd python, its command line is still the test's own
        cmdline = Path(f"/proc/{other.pid}/cmdline")
        _wait(lambda: b"glyphcore" in cmdline.read_bytes(), what="the process to start python")
        start = _wait(lambda: pid_start_time(other.pid), what="the process start time")
        run = tmp_path / "runs" / "r1"
        run.mkdir(parents=True)
        runs.write_json_atomic(run / "config.json", {"model": "lenet"})
        runs.write_status(
            run,
            {
                "state": "running",
                "pid": other.pid,
                "pid_start": start,
                "launcher_pid": other.pid,
                "launcher_pid_start": start,
            },
        )
        assert runs.read_status(run)["state"] == "running"  # the right start time: it is the run's process
        runs.write_status(
            run,
            {
                "state": "running",
                "pid": other.pid,
                "pid_start": start - 1,
                "launcher_pid": other.pid,
                "launcher_pid_start": start - 1,
            },
        )
        assert runs.read_status(run)["state"] == "crashed"
        with pytest.raises(RunError):
            runs.cancel(run)
        assert other.poll() is None  # not signalled
    finally:
        other.kill()
        other.wait()


# ------------------------------------------------------------------------------------------------
# 4. No silently wrong result
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def trained(course, tmp_path) -> Path:
    run = tmp_path / "trained"
    assert _train(course, run, "--epochs", "2") == 0
    return run


def test_a_bit_flipped_checkpoint_is_refused(trained, capsys):
    import zipfile

    from glyphcore.checkpoint import load_checkpoint
    from glyphcore.errors import CheckpointError

    ckpt = trained / "best.pt"
    load_checkpoint(ckpt)  # intact: loads
    with zipfile.ZipFile(ckpt) as z:  # flip one bit inside the largest weight tensor's bytes
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(ckpt.read_bytes())
    name_len, extra_len = (
        int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little"),
        int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little"),
    )
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.file_size // 2] ^= 0x10
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(ckpt)
    assert cli.main(["evaluate", str(trained), "--device", "cpu"]) == 2
    assert "damaged" in capsys.readouterr().err


def test_nan_weights_and_a_null_state_dict_are_refused(trained, tmp_path):
    from glyphcore.checkpoint import load_checkpoint
    from glyphcore.errors import CheckpointError
    from glyphcore.infer import load_predictor

    ckpt = load_checkpoint(trained / "best.pt")
    key = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][key][0] = float("nan")
    save_checkpoint(ckpt, tmp_path / "nan.pt")  # a fresh checksum: only the NaN is wrong
    with pytest.raises(CheckpointError, match="not finite"):
        load_predictor(tmp_path / "nan.pt")
    ckpt["state_dict"] = None
    save_checkpoint(ckpt, tmp_path / "null.pt")
    with pytest.raises(CheckpointError, match="no usable weights"):
        load_predictor(tmp_path / "null.pt")


def test_an_absurd_input_size_is_refused_before_allocating(trained, tmp_path):
    from glyphcore.checkpoint import load_checkpoint
    from glyphcore.errors import CheckpointError
    from glyphcore.infer import load_predictor

    ckpt = load_checkpoint(trained / "best.pt")
    ckpt["model_args"] = {**ckpt["model_args"], "input_size": [60000, 60000]}
    save_checkpoint(ckpt, tmp_path / "huge.pt")
    with pytest.raises(CheckpointError, match="4096"):
        load_predictor(tmp_path / "huge.pt")


def test_the_committed_starter_loads_and_a_checkpoint_from_before_checksums_still_does(tmp_path):
    import torch

    from glyphcore.checkpoint import load_checkpoint

    ckpt = load_checkpoint(WORKTREE / "checkpoints" / "starter" / "best.pt")  # its checksum is verified
    assert len(ckpt["state_dict_sha256"]) == 64 and ckpt["state_dict"]
    old = {k: v for k, v in ckpt.items() if k != "state_dict_sha256"}  # as files were written before checksums
    torch.save(old, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["state_dict"].keys() == ckpt["state_dict"].keys()


def test_divergence_is_caught_by_loss_growth(course, tmp_path, capsys):
    from glyphcore.train.callbacks import loss_diverged

    # scripted: the report's run, a slow start, a blow-up without NaN
    assert not any(loss_diverged(v, e, 52) for e, v in enumerate([3.9, 1.2, 0.4, 0.2, 0.3], 1))
    assert not loss_diverged(40.0, 1, 52)  # epoch 1 may start badly
    assert loss_diverged(12.0, 2, 52) and loss_diverged(1e10, 5, 52)
    assert loss_diverged(2.5, 3, 2) and not loss_diverged(2.0, 3, 2)  # 2 classes: 3 ln 2 = 2.08
    run = tmp_path / "hot"
    assert _train(course, run, "--epochs", "4", "--lr", "5") == 1  # finite, huge losses
    out = capsys.readouterr().out
    assert out.startswith("Training") and "diverged: the validation loss is" in out
    assert _status(run)["state"] == "diverged"


@pytest.mark.slow
def test_resume_refuses_a_changed_data_set(course, tmp_path, capsys):
    root = Path(course.split(":", 1)[1])
    run = tmp_path / "run"
    assert _train(course, run, "--epochs", "1") == 0
    first = min((root / "train").rglob("*.npy"))
    np.save(first, np.full((28, 28), 200, np.uint8))
    capsys.readouterr()
    assert _train(course, run, "--resume", "--epochs", "2") == 2
    assert "changed since this run was trained" in capsys.readouterr().err
    assert _train(course, run, "--resume", "--epochs", "2", "--allow-data-change") == 0


def test_course_floats_are_scaled_per_file(tmp_path):
    from glyphcore.data import load_dataset

    d = tmp_path / "c" / "train" / "41"
    d.mkdir(parents=True)
    img = np.zeros((28, 28), np.float32)
    img[10:18, 10:18] = 1.0
    np.save(d / "0_41.npy", img)  # 0-1 floats
    np.save(d / "1_41.npy", img * 255.0)  # the same image in 0-255 floats
    s = load_dataset(f"course:{tmp_path / 'c'}", "train")
    assert s.images[0].max() == 255 and np.array_equal(s.images[0], s.images[1])


def test_exif_orientation_is_applied(tmp_path):
    from glyphcore.infer.image_input import image_array

    a = np.zeros((60, 40), np.uint8)
    a[:10] = 255  # a bar along the top as stored
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view": a phone held upright
    im.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    arr, (w, h) = image_array(tmp_path / "phone.jpg")
    assert (w, h) == (60, 40) and arr.shape == (40, 60)
    assert arr[:, -10:].mean() > 200 and arr[:, :10].mean() < 30  # the bar is now on the right


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--lr", "inf", "finite"),
        ("--lr", "nan", "finite"),
        ("--lr", "1e9x", "float"),
        ("--momentum", "nan", "momentum must be a finite"),
        ("--weight-decay", "nan", "weight_decay"),
        ("--label-smoothing", "1.5", "label_smoothing"),
        ("--dropout", "-0.1", "dropout"),
        ("--time-budget-min", "nan", "time_budget_min"),
        ("--seed", "99999999999999999999999", "seed"),
        ("--seed", "-1", "seed"),
        ("--momentum", "1.5", "momentum"),
    ],
)
def test_bad_numeric_flags_are_one_line_errors(flag, value, words, capsys):
    with pytest.raises(SystemExit) if value == "1e9x" else _no_raise():
        code = cli.main(["train", flag, value, "--epochs", "1"])
        assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert words in err[-1] and "Traceback" not in "\n".join(err)
    assert "lower it" not in err[-1] and "too high" not in err[-1]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["predict", "--topk", "0", "x.png"], "--topk"),
        (["data", "show", "--n", "-1"], "--n"),
        (["data", "show", "--scale", "0"], "--scale"),
        (["data", "show", "--out", "somewhere/"], "is a folder"),
    ],
)
def test_bad_command_flags_are_one_line_errors(argv, words, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def _no_raise():
    import contextlib

    return contextlib.nullcontext()


# ------------------------------------------------------------------------------------------------
# 5. One-line errors instead of tracebacks; one bad run never hides the others
# ------------------------------------------------------------------------------------------------


def test_wrong_type_status_fields_show_one_run_as_unknown(tmp_path, monkeypatch, capsys):
    import json

    from run_folders import write_run

    from glyphcore import runs

    root = tmp_path / "runs"
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(root))
    write_run(root, "good", epochs=2)
    bad = write_run(root, "bad", epochs=2)
    status = json.loads((bad / "status.json").read_text())
    status.update(epoch="abc", best_val_acc=[1], started={"x": 1}, pid="1", state=7)
    (bad / "status.json").write_text(json.dumps(status))
    config = json.loads((bad / "config.json").read_text())
    config.update(model=5, epochs="many")
    (bad / "config.json").write_text(json.dumps(config))
    (bad / "metrics.jsonl").write_text('{"event": "epoch", "epoch": "x", "val_loss": "no"}\n{"event": "epoch"}\n')
    infos = {i.run_id: i for i in runs.list_runs()}
    assert {"good", "bad"} <= set(infos)
    assert infos["bad"].state == "unknown" and infos["bad"].epoch == 0 and infos["bad"].model is None
    assert "wrong type" in infos["bad"].message
    assert cli.main(["runs", "list"]) == 0
    assert "good" in capsys.readouterr().out
    assert cli.main(["runs", "show", "bad"]) == 0
    assert "epoch   ?" in capsys.readouterr().out
    (bad / "metrics.jsonl").unlink()
    (bad / "metrics.jsonl").mkdir()
    assert cli.main(["runs", "show", "bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be read" in err[0]


def test_an_oversized_png_chunk_fails_alone_in_a_multi_file_predict(tmp_path, capsys):
    import struct
    import zlib

    from PIL import PngImagePlugin

    good = _glyph(tmp_path / "good.png")
    data = good.read_bytes()
    text = zlib.compress(b"a" * (PngImagePlugin.MAX_TEXT_CHUNK + 10))
    body = b"zTXt" + b"k\0\0" + text
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    (tmp_path / "bomb.png").write_bytes(data[:33] + chunk + data[33:])  # after the IHDR chunk
    code = cli.main(["predict", str(tmp_path / "bomb.png"), str(good)])
    out = capsys.readouterr()
    assert code == 2
    assert out.out.startswith(str(good))  # the good file was still predicted
    assert "bomb.png" in out.err and "Traceback" not in out.err
    assert "decompressed data too large" in out.err.lower()  # Pillow's reason (10.x capitalises it)


def test_evaluate_on_a_missing_or_bogus_device_is_one_line(trained, capsys):
    for device in ("bogus", "cuda:7" if torch.cuda.is_available() else "cuda"):
        assert cli.main(["evaluate", str(trained), "--device", device, "--force"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "device" in err[0]


def test_a_read_only_runs_folder_is_a_clear_error(course, tmp_path, monkeypatch, capsys):
    """Root ignores chmod, so the read-only file system is injected where the run folder is written."""
    import errno

    from glyphcore import atomic

    real = atomic.tempfile.mkstemp

    def mkstemp(*a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), kw.get("dir"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    assert _train(course, tmp_path / "ro") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "read-only file system" in err[-1] and "Traceback" not in "\n".join(err)
    monkeypatch.setattr(atomic.tempfile, "mkstemp", real)


def test_a_nul_byte_in_a_run_name_is_sanitised(tmp_path):
    from glyphcore import runs

    d = runs.new_run_dir("lenet", "relu", "bad\0name", root=tmp_path)
    assert "\0" not in d.name and d.is_dir()


def test_torchrun_rendezvous_is_on_loopback():
    from glyphcore.runs.process import train_argv

    argv = train_argv("/tmp/r", ["--epochs", "1"], nproc=2)
    assert "--standalone" not in argv  # its rendezvous endpoint is the host name
    assert "--rdzv-endpoint=127.0.0.1:0" in argv and "--local-addr=127.0.0.1" in argv
    assert argv[argv.index("-m") + 1] == "torch.distributed.run"


@pytest.mark.slow
def test_sigkill_loses_at_most_the_epoch_in_progress(live_run):
    """SIGKILL a live trainer mid-run, resume it: the metrics continue without a gap or a repeat, the
    orphan-free folder resumes from last.pt, and at most the epoch in progress is redone."""
    import json
    import signal

    from glyphcore import runs
    from glyphcore.checkpoint import load_checkpoint

    run, proc = live_run
    _wait(lambda: _status(run).get("epoch", 0) >= 2, what="two epochs")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = max(
        json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"event": "epoch"' in x
    )
    saved = load_checkpoint(run / "last.pt")["epoch"]
    assert done_at_kill - saved <= 1  # epochs lost
    runs.resume(run, epochs=done_at_kill + 1)
    _wait(lambda: runs.read_status(run)["state"] in ("done", "failed", "crashed"), timeout=120, what="the resume")
    assert runs.read_status(run)["state"] == "done"
    epochs = [
        json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"event": "epoch"' in x
    ]
    assert epochs == list(range(1, done_at_kill + 2))
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_a_nul_byte_in_a_launched_run_name_leaves_no_phantom_run(tmp_path, monkeypatch):
    from glyphcore import runs
    from glyphcore.errors import ConfigError
    from glyphcore.train import make_config

    root = tmp_path / "runs"
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(root))
    with pytest.raises(ConfigError, match="control characters"):
        runs.launch(make_config(epochs=1), name="my\0run")
    with pytest.raises(ConfigError, match="NUL"):
        runs.launch(make_config(epochs=1, data="glyphs-52\0"))
    assert not root.exists() or not any(root.iterdir())


def test_an_empty_class_folder_is_an_error_not_a_missing_class(tmp_path):
    from shapes_data import write_course_layout

    from glyphcore.data import load_dataset
    from glyphcore.errors import DataError

    root = write_course_layout(tmp_path / "c", {"train": 20})
    (root / "train" / "5a").mkdir()  # "Z": a class folder with nothing in it
    with pytest.raises(DataError, match="holds no .npy files"):
        load_dataset(f"course:{root}", "train")
    folder = tmp_path / "f" / "cats"
    folder.mkdir(parents=True)
    _glyph(folder / "1.png")
    (tmp_path / "f" / "dogs").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_dataset(f"folder:{tmp_path / 'f'}", "all")


def test_evaluate_says_when_its_result_could_not_be_saved(trained, monkeypatch, capsys):
    import errno

    from glyphcore.evaluate import store as eval_store

    def read_only(*a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(trained / "eval"))

    monkeypatch.setattr(eval_store, "_save", read_only)
    assert cli.main(["evaluate", str(trained), "--split", "valid", "--device", "cpu"]) == 0
    out = capsys.readouterr()
    assert "warning: the result was not saved" in out.err and "read-only file system" in out.err


def test_delete_on_a_read_only_folder_is_one_line(trained, monkeypatch, capsys):
    import errno
    import shutil

    from glyphcore.runs import process

    def rmtree(path, *a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setenv("GLYPH_RUNS_DIR", str(trained.parent))  # delete removes run folders of the runs folder only
    monkeypatch.setattr(process.shutil, "rmtree", rmtree)
    assert cli.main(["runs", "delete", str(trained), "--yes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "read-only file system" in err[0]
    monkeypatch.setattr(process.shutil, "rmtree", shutil.rmtree)
    assert trained.is_dir()
