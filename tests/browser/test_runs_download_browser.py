"""Real browser: download a run's best.pt and its ONNX export from Runs & Compare; every format's
button shows its whole label in a 900 px window."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_screens_browser import PROBLEMS_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Downloads are built on the click, in a server thread (Streamlit's deferred download data): the ONNX
# export takes about 10 s on a busy 2-core machine, and even best.pt's bytes waited over 30 s (the
# default) once, with training runs and a benchmark loading the cores. Tests do not time the product.
DOWNLOAD_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def trained(app_env):
    from tiny_runs import tiny_run  # tests/tiny_runs.py: a real 2-epoch run

    return tiny_run(app_env.runs_dir, "dl-run", activation="relu")


def test_download_the_checkpoint_and_the_onnx_export(
    trained, page, streamlit_server, open_page, wait_for_app, save_screenshot, choose_option
):
    import onnxruntime as ort

    open_page(page, streamlit_server, "runs")
    page.get_by_text("Download a run's model").click()
    section = page.get_by_test_id("stExpander").filter(has_text="Download a run's model")
    choose_option(page, section.get_by_test_id("stSelectbox"), "dl-run")
    wait_for_app(page)

    with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as pt:
        section.get_by_role("button", name="best.pt").click()
    assert pt.value.suggested_filename == "dl-run-best.pt"
    assert pt.value.path().read_bytes() == (trained / "best.pt").read_bytes()

    onnx_button = section.get_by_role("button", name="ONNX")
    expect(onnx_button).to_be_enabled()
    with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as onnx:
        onnx_button.click()
    assert onnx.value.suggested_filename == "dl-run-best.onnx"
    session = ort.InferenceSession(onnx.value.path(), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["run"] == "dl-run"
    assert (trained / "export" / "dl-run-best.onnx").is_file()  # built into the run's export/ folder
    assert page.get_by_test_id("stException").count() == 0
    save_screenshot(page, "runs-download")

    page.set_viewport_size({"width": 900, "height": 1000})  # with the sidebar open: about 550 px of page
    expect(section.get_by_role("button", name="torch.export (.pt2)")).to_be_visible()
    page.wait_for_timeout(400)  # the columns re-lay out
    assert page.evaluate(PROBLEMS_JS) == []  # no button cut or spilling out of the page
