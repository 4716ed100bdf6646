"""Open ``report.html`` in headless Chromium (a real browser, from the system packages): the
ranking table and every embedded image render, and a screenshot is not blank."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from _optional import browser, skip_without_browser
from seglosses.cli.compare import compare
from seglosses.cli.config import TrainConfig

BROWSER = browser()
pytestmark = skip_without_browser()

TINY = dict(data="synthetic", size=32, num_images=6, val_split=0.34, batch_size=2, width=4,
            depth=2, device="cpu", preview=2, epochs=1)
LOSSES = ["ce", "dice"]
# Appended to a copy of the page: after load, record how many images decoded with a size.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const decoded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", images.length);
  document.body.setAttribute("data-decoded", decoded);
  document.body.setAttribute("data-rows",
    document.querySelectorAll("#ranking tbody tr").length);
});
</script>"""


def _chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess:
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as tests/cli/conftest.py does for function-scoped tests
    try:
        out = tmp_path_factory.mktemp("browser")
        compare(TrainConfig(**TINY, out=str(out / "cmp")), LOSSES, [0], progress=False)
    finally:
        torch.set_num_threads(threads)
    return out / "cmp" / "report.html"


def test_the_dom_holds_the_table_and_every_image(report, tmp_path):
    done = _chromium("--dump-dom", report.as_uri(), profile=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert '<table id="ranking">' in dom
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr>") == len(LOSSES)
    assert all(f"<td>{loss}</td>" in body for loss in LOSSES)
    sources = re.findall(r'<img src="([^"]+)"', dom)
    assert len(sources) == 3 + len(LOSSES)  # bars, curves, predictions, each loss's curves
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    # the verdict, the notes and the tables that answer "does it help my small classes?"
    assert re.search(r'<p class="summary">(Best|No clear winner): ', dom)
    assert '<ul class="notes">' in dom
    for table in ("class-iou", "class-dice", "class-precision", "class-recall", "baselines",
                  "data"):
        assert f'<table id="{table}">' in dom, table


def test_every_image_decodes_in_the_browser(report, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    done = _chromium("--dump-dom", "--virtual-time-budget=5000", probed.as_uri(),
                     profile=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    attributes = dict(re.findall(r'data-(images|decoded|rows)="(\d+)"', done.stdout))
    assert attributes == {"images": str(3 + len(LOSSES)), "decoded": str(3 + len(LOSSES)),
                          "rows": str(len(LOSSES))}


def test_a_screenshot_is_not_blank(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    done = _chromium(f"--screenshot={shot}", "--window-size=1200,3200", "--hide-scrollbars",
                     report.as_uri(), profile=tmp_path / "profile")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert pixels.shape == (3200, 1200, 3)
    non_white = (pixels < 245).any(axis=2).mean()
    colours = len(np.unique(pixels.reshape(-1, 3)[::7], axis=0))
    assert non_white > 0.05 and colours > 50  # text, tables and figures, not an empty page
