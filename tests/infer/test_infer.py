"""Inference: the Draw page's preprocessing, predictors rebuilt from checkpoints, saliency and feature maps.

Checkpoints here are built with create_model + save_checkpoint in the documented format (untrained
weights: these tests check plumbing and messages; tests/test_starter.py checks what a trained model says).
"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from glyphcore.checkpoint import save_checkpoint
from glyphcore.errors import CheckpointError, ConfigError, ImageInputError, RunError
from glyphcore.frame import BASELINE_ROW, CAP_ROW, CLASSES, FRAME_SIZE, X_HEIGHT_ROW
from glyphcore.infer import (
    MAX_INPUT_PIXELS,
    feature_maps,
    load_predictor,
    preprocess,
    saliency,
)
from glyphcore.models import create_model
from glyphcore.testing import letter_strokes, render_canvas, untrained_checkpoint

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _canvas(letter: str, style: str = "default", **kw) -> np.ndarray:
    size = kw.pop("canvas_size", 280)
    width = kw.pop("stroke_width", 18)
    return render_canvas(
        letter_strokes(letter, canvas_size=size, **kw), canvas_size=size, stroke_width=width, style=style
    )


def _grey(letter: str, **kw) -> Image.Image:
    """White-on-black L image of a drawn letter."""
    return Image.fromarray(np.ascontiguousarray(_canvas(letter, "white_on_black", **kw)[..., 0]), "L")


def _ink_rows(img: np.ndarray, level: int = 128) -> tuple[int, int]:
    rows = np.flatnonzero((img >= level).any(axis=1))
    return int(rows[0]), int(rows[-1])


def _ink_cols(img: np.ndarray, level: int = 128) -> tuple[int, int]:
    cols = np.flatnonzero((img >= level).any(axis=0))
    return int(cols[0]), int(cols[-1])


def _png_bytes(img: Image.Image, **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def _write_ckpt(path, model_name="seed_cnn", **kw):
    return untrained_checkpoint(path, model_name, **{"epoch": 1, "val_loss": 1.0, "val_acc": 0.5, **kw})


def _make_run(runs_dir, run_id="r1", with_ckpt=True, state="done", status=None, **ckpt_kw):
    d = runs_dir / run_id
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"data": "glyphs-52", "model": "seed_cnn"}))
    (d / "status.json").write_text(json.dumps({"state": state, **(status or {})}))
    if with_ckpt:
        _write_ckpt(d / "best.pt", **ckpt_kw)
    return d


# ---------------------------------------------------------------------------------------------
# preprocessing: the canvas
# ---------------------------------------------------------------------------------------------


def test_three_canvas_formats_give_the_same_model_input():
    for letter, seed in (("A", 1), ("g", 2), ("c", 3)):
        strokes = letter_strokes(letter, jitter=1.0, seed=seed)
        tensors = [
            preprocess(render_canvas(strokes, style=s)).tensor for s in ("default", "white_on_black", "black_on_white")
        ]
        assert tensors[0].shape == (1, 1, FRAME_SIZE, FRAME_SIZE) and tensors[0].dtype == torch.float32
        torch.testing.assert_close(tensors[0], tensors[1], rtol=0, atol=0)
        torch.testing.assert_close(tensors[0], tensors[2], rtol=0, atol=0)


def test_a_drawing_at_the_guide_lines_lands_in_the_frame():
    # A thin pen so the ink's edges sit on the stroke centres, i.e. on the guide lines.
    width = 4  # canvas px -> 1.4 frame px
    half = width / 2.8 / 2
    for letter in "HEThk":
        p = preprocess(_canvas(letter, stroke_width=width))
        top, bottom = _ink_rows(p.preview, level=64)
        assert abs(top + half - CAP_ROW) <= 2, (letter, top)
        assert abs(bottom - half - BASELINE_ROW) <= 2, (letter, bottom)
    # the glyph is centred horizontally on its ink, like every rendered glyph
    left, right = _ink_cols(preprocess(_canvas("H")).preview, level=1)
    assert abs((left + right + 1) / 2 - FRAME_SIZE / 2) <= 1


def test_an_off_centre_drawing_is_centred_but_keeps_its_height():
    strokes = [[(x - 70, y) for x, y in s] for s in letter_strokes("H")]  # drawn 70 px left of centre
    p = preprocess(render_canvas(strokes))
    q = preprocess(_canvas("H"))
    np.testing.assert_array_equal(p.preview, q.preview)
    strokes_low = [[(x, y + 14) for x, y in s] for s in letter_strokes("H")]  # drawn 5 frame px low
    low = preprocess(render_canvas(strokes_low)).preview
    assert _ink_rows(low)[0] == _ink_rows(q.preview)[0] + 5


def test_a_lowercase_letter_keeps_its_lowercase_size():
    small, big = preprocess(_canvas("c")).preview, preprocess(_canvas("C")).preview
    top_c, bottom_c = _ink_rows(small)
    top_C, bottom_C = _ink_rows(big)
    assert abs(bottom_c - bottom_C) <= 1  # both on the baseline
    assert abs(top_c - (X_HEIGHT_ROW - 3)) <= 3  # c reaches the x-height, not the cap line
    assert top_C < top_c - 12  # C is much taller: c was not blown up to C
    xs = preprocess(_canvas("x")).preview
    assert _ink_rows(xs)[0] > CAP_ROW + 10


def test_a_hidpi_canvas_gives_the_same_frame():
    lo = preprocess(_canvas("R")).preview.astype(int)
    hi = preprocess(_canvas("R", canvas_size=560, stroke_width=36)).preview.astype(int)
    assert np.abs(lo - hi).mean() < 3
    assert abs(_ink_rows(lo)[0] - _ink_rows(hi)[0]) <= 1 and abs(_ink_rows(lo)[1] - _ink_rows(hi)[1]) <= 1


def test_input_size_and_channels_follow_the_model():
    p = preprocess(_canvas("Q"), input_size=28, in_channels=3)
    assert p.tensor.shape == (1, 3, 28, 28)
    assert p.preview.shape == (FRAME_SIZE, FRAME_SIZE)
    assert 0.0 <= float(p.tensor.min()) and float(p.tensor.max()) <= 1.0 and float(p.tensor.max()) > 0.5


# ---------------------------------------------------------------------------------------------
# preprocessing: images and bad input
# ---------------------------------------------------------------------------------------------


def test_an_empty_or_nearly_empty_drawing_is_reported_not_predicted(tmp_path):
    blank = np.zeros((280, 280, 4), np.uint8)
    p = preprocess(blank)
    assert p.empty and p.ink_fraction == 0.0 and "nothing is drawn" in p.note
    assert preprocess(np.full((280, 280, 4), 255, np.uint8)).empty  # opaque white, no ink
    dot = render_canvas([[(140, 140)]], stroke_width=10)  # a single click
    d = preprocess(dot)
    assert d.empty and "almost nothing" in d.note
    ckpt = _write_ckpt(tmp_path / "m.pt")
    predictor = load_predictor(ckpt)
    with pytest.raises(ImageInputError, match="nothing is drawn"):
        predictor.predict(p)


def test_dark_ink_on_light_paper_and_light_on_dark_agree():
    g = _grey("k")
    light = preprocess(g)
    dark = preprocess(Image.eval(g, lambda v: 255 - v))
    assert dark.inverted and not light.inverted
    np.testing.assert_array_equal(light.preview, dark.preview)
    # grey paper and grey pencil are stretched to full contrast
    faint = preprocess(Image.eval(g, lambda v: 200 - v * 100 // 255))  # ink 100, paper 200
    assert not faint.empty and int(faint.preview.max()) >= 250
    assert np.abs(faint.preview.astype(int) - light.preview.astype(int)).mean() < 2


def test_pil_modes_files_and_bytes_give_the_same_glyph(tmp_path):
    g = _grey("M")
    ref = preprocess(g).preview.astype(int)
    rgb_dark_on_white = Image.eval(g, lambda v: 255 - v).convert("RGB")
    i16 = Image.fromarray(np.asarray(g).astype(np.uint16) * 257)
    assert i16.mode.startswith("I;16")
    rgba_transparent = Image.fromarray(_canvas("M"), "RGBA")
    pal = g.point(lambda v: 255 if v >= 128 else 0).convert("P")
    pal_t = Image.new("P", g.size, 0)
    pal_t.putpalette([255, 255, 255, 0, 0, 0])  # 0: white paper (transparent), 1: black ink
    pal_t.paste(1, mask=g.point(lambda v: 255 if v >= 128 else 0))
    pal_t.info["transparency"] = 0
    path = tmp_path / "m.png"
    g.save(path)
    variants = {
        "L": g,
        "RGB": g.convert("RGB"),
        "RGB dark on white": rgb_dark_on_white,
        "CMYK": rgb_dark_on_white.convert("CMYK"),
        "I;16": i16,
        "I": g.convert("I"),
        "F": g.convert("F"),
        "LA": g.convert("LA"),
        "RGBA transparent": rgba_transparent,
        "P": pal,
        "P+transparency": Image.open(io.BytesIO(_png_bytes(pal_t))),
        "1": g.convert("1"),
        "path": path,
        "str path": str(path),
        "bytes": path.read_bytes(),
        "file object": io.BytesIO(path.read_bytes()),
        "JPEG bytes": _png_bytes(g.convert("RGB"), format="JPEG", quality=95),
    }
    for name, image in variants.items():
        p = preprocess(image)
        assert not p.empty, name
        diff = np.abs(p.preview.astype(int) - ref).mean()
        tol = 6 if name in ("P", "1", "P+transparency", "JPEG bytes") else 1  # binarised or lossy
        assert diff < tol, (name, diff)


def test_an_animated_image_uses_its_first_frame(tmp_path):
    first, second = _grey("W"), Image.new("L", (280, 280), 0)
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(path) as im:
        assert getattr(im, "n_frames", 1) == 2
    p = preprocess(path)
    assert not p.empty
    assert np.abs(p.preview.astype(int) - preprocess(first).preview.astype(int)).mean() < 2


def _png_bomb(side: int) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: a few hundred KB on disk, side^2 pixels decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row * 500) for _ in range(side // 500)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path):
    bomb = _png_bomb(20000)  # 400 megapixels
    assert len(bomb) < 200_000
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    for src in (path, bomb):
        with pytest.raises(ImageInputError, match=r"400 megapixels; the limit is 50 MP"):
            preprocess(src)


def test_the_pixel_limit_is_where_images_start_being_refused():
    h = 5000
    w = MAX_INPUT_PIXELS // h
    assert h * w == MAX_INPUT_PIXELS  # an image of exactly the limit ...
    for make in (lambda w: np.broadcast_to(np.uint8(0), (h, w)), lambda w: Image.new("L", (w, h))):
        assert preprocess(make(w)).source_size == (w, h)  # ... is taken (it is blank: reported empty)
        with pytest.raises(ImageInputError, match="megapixels; the limit is"):
            preprocess(make(w + 1))  # one column more is refused


def test_a_large_image_under_the_limit_is_downscaled_and_works():
    g = _grey("B")
    big = g.resize((2100, 2100), Image.Resampling.NEAREST)  # 7.5x the canvas
    p = preprocess(big)
    assert p.source_size == (2100, 2100) and not p.empty
    assert np.abs(p.preview.astype(int) - preprocess(g).preview.astype(int)).mean() < 3


def test_a_wide_image_is_padded_to_a_square_not_stretched():
    g = np.asarray(_grey("O"))
    wide = np.zeros((280, 560), np.uint8)
    wide[:, 140:420] = g  # the canvas in the middle of a wider strip
    p = preprocess(wide)
    # the square is 560 px: the letter is half as tall, with its own proportions (not stretched)
    top, bottom = _ink_rows(p.preview)
    left, right = _ink_cols(p.preview)
    ref = preprocess(g).preview
    (rt, rb), (rl, rr) = _ink_rows(ref), _ink_cols(ref)
    assert abs((bottom - top) / (right - left) - (rb - rt) / (rr - rl)) < 0.15
    assert (bottom - top) < 0.6 * (rb - rt)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"", "empty"),
        (b"this is a text file, not an image", "not an image"),
        (np.zeros((4, 280, 280), np.uint8), "H x W"),
        (np.zeros((0, 280), np.uint8), "no pixels"),
        (12345, "cannot read a int"),
        (np.broadcast_to(np.uint8(0), (20000, 20000)), "400 megapixels; the limit is 50 MP"),  # a view: no memory
    ],
    ids=["empty bytes", "text bytes", "channels first", "no pixels", "a number", "huge array"],
)
def test_bad_inputs_get_a_clear_message(bad, message):
    with pytest.raises(ImageInputError, match=message):
        preprocess(bad)


def test_missing_truncated_and_non_image_files(tmp_path):
    with pytest.raises(ImageInputError, match="does not exist"):
        preprocess(tmp_path / "nope.png")
    with pytest.raises(ImageInputError, match="is a folder"):
        preprocess(tmp_path)
    whole = _png_bytes(_grey("T"))
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        preprocess(cut)
    txt = tmp_path / "notes.png"
    txt.write_text("hello")
    with pytest.raises(ImageInputError, match="not an image"):
        preprocess(txt)


# ---------------------------------------------------------------------------------------------
# predictors
# ---------------------------------------------------------------------------------------------


def test_a_predictor_is_rebuilt_from_its_checkpoint_alone(runs_dir):
    run = _make_run(runs_dir)
    for ref in ("r1", run, run / "best.pt", str(run / "best.pt")):
        pr = load_predictor(ref)
        assert pr.classes == CLASSES and pr.input_size == (100, 100) and pr.in_channels == 1
        assert not pr.model.training
    pr = load_predictor("r1")
    preds = pr.predict([pr.prepare(_canvas("A")), pr.prepare(_canvas("b"))], topk=5)
    assert len(preds) == 2
    for p in preds:
        assert len(p.topk) == 5 and p.label == p.topk[0][0]
        probs = [q for _, q in p.topk]
        assert probs == sorted(probs, reverse=True)
        assert p.probs.shape == (52,) and abs(float(p.probs.sum()) - 1) < 1e-4
        assert all(c in CLASSES for c, _ in p.topk)
    # the same weights give the same answer however the model is reached
    x = pr.prepare(_canvas("A"))
    np.testing.assert_allclose(load_predictor(run / "best.pt").predict(x)[0].probs, pr.predict(x)[0].probs)


def test_models_of_other_sizes_and_channels_get_their_own_input(tmp_path):
    pr = load_predictor(_write_ckpt(tmp_path / "lenet.pt", "lenet", classes=list("0123456789"), input_size=28))
    [p] = pr.predict(pr.prepare(_canvas("A")), topk=3)
    assert pr.input_size == (28, 28) and len(p.topk) == 3 and p.label in "0123456789"
    pr3 = load_predictor(_write_ckpt(tmp_path / "rgb.pt", "tiny_conv", input_size=28, in_channels=3))
    assert pr3.prepare(_canvas("A")).tensor.shape == (1, 3, 28, 28)
    assert pr3.predict(pr3.prepare(_canvas("A")), topk=100)[0].topk.__len__() == 52
    with pytest.raises(ImageInputError, match="takes 3 x 28 x 28"):
        pr3.predict(preprocess(_canvas("A")))


def test_a_run_with_no_checkpoint_yet(runs_dir):
    _make_run(runs_dir, "fresh", with_ckpt=False, state="queued", status={"updated": time.time()})
    with pytest.raises(
        CheckpointError, match=r"run fresh has no best.pt yet \(state: queued\).*end of the first epoch"
    ):
        load_predictor("fresh")
    # a run whose process died before its first epoch: the state says so
    _make_run(runs_dir, "dead", with_ckpt=False, state="running", status={"pid": 2**22 + 12345})
    with pytest.raises(CheckpointError, match=r"run dead has no best.pt yet \(state: crashed\)"):
        load_predictor("dead")
    with pytest.raises(RunError, match="no run 'ghost'"):
        load_predictor("ghost")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_predictor(runs_dir / "missing.pt")


def test_foreign_and_mismatched_checkpoints_are_refused(tmp_path):
    # a bare state_dict (another tool's file)
    torch.save(
        create_model("seed_cnn", num_classes=52, in_channels=1, input_size=100).state_dict(), tmp_path / "bare.pt"
    )
    with pytest.raises(CheckpointError, match="not a glyphcore checkpoint"):
        load_predictor(tmp_path / "bare.pt")
    # a model this glyphcore does not know
    _write_ckpt(tmp_path / "unknown.pt", model_name="seed_cnn")
    ck = torch.load(tmp_path / "unknown.pt", weights_only=True)
    ck["model_name"] = "transformer_xxl"
    save_checkpoint(ck, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="'transformer_xxl' model, which this glyphcore does not know"):
        load_predictor(tmp_path / "unknown.pt")
    # weights of another model under seed_cnn's name
    lenet = create_model("lenet", num_classes=52, in_channels=1, input_size=100)
    _write_ckpt(tmp_path / "swapped.pt", state_dict=lenet.state_dict())
    with pytest.raises(CheckpointError, match="weights do not fit a seed_cnn model"):
        load_predictor(tmp_path / "swapped.pt")
    # a class list that does not fit the model's outputs
    _write_ckpt(tmp_path / "classes.pt", classes=list("0123456789"))
    ck = torch.load(tmp_path / "classes.pt", weights_only=True)
    ck["classes"] = CLASSES
    save_checkpoint(ck, tmp_path / "classes.pt")
    with pytest.raises(CheckpointError, match="10 outputs but the checkpoint lists 52 classes"):
        load_predictor(tmp_path / "classes.pt")
    # not a torch file at all
    (tmp_path / "junk.pt").write_bytes(b"\x00junk" * 100)
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_predictor(tmp_path / "junk.pt")


# ---------------------------------------------------------------------------------------------
# why
# ---------------------------------------------------------------------------------------------


def test_saliency_maps_cover_the_input_and_leave_the_model_as_it_was(tmp_path):
    pr = load_predictor(_write_ckpt(tmp_path / "m.pt"))
    x = pr.prepare(_canvas("A"))
    for method in ("gradcam", "smoothgrad", "gradient"):
        s = saliency(pr, x, method=method)
        assert s.shape == (100, 100) and s.dtype == np.float32, method
        assert float(s.min()) == 0.0 and float(s.max()) == 1.0, method
    maps = feature_maps(pr, x)
    assert [n for n, _ in maps] == ["features.conv1", "features.conv2", "features.conv3"]
    assert [m.shape for _, m in maps] == [(16, 48, 48), (32, 24, 24), (32, 12, 12)]
    # the model is left as it was: no hooks, no gradients kept
    assert not any(m._forward_hooks for m in pr.model.modules())
    assert all(p.grad is None for p in pr.model.parameters())
    mlp = load_predictor(_write_ckpt(tmp_path / "mlp.pt", "mlp", input_size=28))
    xm = mlp.prepare(_canvas("A"))
    assert feature_maps(mlp, xm) == []
    # no conv layer: Grad-CAM falls back to smoothed gradients
    np.testing.assert_array_equal(saliency(mlp, xm), saliency(mlp, xm, method="smoothgrad"))


def _norm01(a: np.ndarray) -> np.ndarray:
    return (a - a.min()) / (a.max() - a.min())


def test_saliency_explains_the_class_it_is_asked_about(tmp_path):
    """Each map is recomputed here from the definition (autograd of logit k), for two classes."""
    import torch.nn.functional as F

    pr = load_predictor(_write_ckpt(tmp_path / "m.pt"))
    x = pr.prepare(_canvas("O")).tensor
    conv = pr.model.features.conv3  # the last conv layer

    def input_gradient(k: int) -> np.ndarray:
        xi = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(pr.model(xi)[0, k], xi)
        return _norm01(g.abs()[0].amax(0).numpy())

    def grad_cam(k: int) -> np.ndarray:
        seen = {}
        h = conv.register_forward_hook(lambda _m, _i, out: seen.update(a=out))
        try:
            logit = pr.model(x.clone().requires_grad_(True))[0, k]  # frozen weights: the graph starts at x
        finally:
            h.remove()
        (g,) = torch.autograd.grad(logit, seen["a"])
        cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * seen["a"]).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=(100, 100), mode="bilinear", align_corners=False)
        return _norm01(cam[0, 0].detach().numpy())

    with torch.enable_grad():
        for target in ("I", "O"):
            k = CLASSES.index(target)
            np.testing.assert_allclose(saliency(pr, x, target=target, method="gradient"), input_gradient(k), atol=1e-5)
            np.testing.assert_allclose(saliency(pr, x, target=target), grad_cam(k), atol=1e-5)
            np.testing.assert_array_equal(saliency(pr, x, target=k), saliency(pr, x, target=target))
    for method in ("gradcam", "smoothgrad", "gradient"):
        i, o = saliency(pr, x, target="I", method=method), saliency(pr, x, target="O", method=method)
        assert np.abs(i - o).mean() > 0.01, method  # the two classes' maps differ
    predicted = CLASSES[int(pr.model(x).argmax())]
    np.testing.assert_array_equal(saliency(pr, x), saliency(pr, x, target=predicted))
    with pytest.raises(ConfigError, match="unknown class 'Ä'"):
        saliency(pr, x, target="Ä")
