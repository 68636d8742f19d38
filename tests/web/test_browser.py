"""The studio in a real browser: headless Chromium (Debian's, driven by Playwright) draws two strokes
of two classes with the mouse; the ids the server receives hold them where they were drawn, and the
painting on the page is the server's painting of those ids.

Waits are on conditions the page exposes (`window.studio`), never fixed sleeps.
"""

import base64
import shutil

import cv2
import numpy as np
import pytest

from rtgan.data import landscapes, sketches
from rtgan.demo.imaging import resize_cover

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (pip)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")

# headless Chromium as root needs --no-sandbox; the network is closed, so nothing in the background may call out;
# the fake camera (a test pattern) stands in for a webcam, allowed without asking
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # fmt: skip
TIMEOUT = 30_000  # ms, for every wait: a loaded CI machine is slow, a hang still fails
MOUNTAIN, SEA, SKY = landscapes.ID["mountain"], landscapes.ID["sea"], landscapes.ID["sky"]

BASE64 = """const base64 = (a) => {
  let s = ""; for (let i = 0; i < a.length; i += 8192) s += String.fromCharCode(...a.subarray(i, i + 8192));
  return btoa(s);
};"""
PAINTING_PIXELS = (
    BASE64
    + """ () => {
  const c = document.getElementById("painting");
  return [c.height, c.width, base64(c.getContext("2d").getImageData(0, 0, c.width, c.height).data)];
}"""
)
SAVED_PNG = (
    BASE64
    + """ async () => {  // what "Save labels" downloads
  const s = studio.state, png = await studio.labelPng(s.ids, s.w, s.h, s.model.bytes_per_id);
  return base64(new Uint8Array(await png.arrayBuffer()));
}"""
)


@pytest.fixture(scope="module")
def served():
    from rtgan.web import create_app
    from rtgan.web.server import BackgroundServer

    last = {}  # connection -> the last Painted the server sent it
    models = ["landscape-asapnet", "landscape-spade", "sketch2landscape-pix2pix"]
    app = create_app(models, size=(256, 256), log=lambda s: None,
                     on_frame=lambda p: last.__setitem__(p.connection, p))  # fmt: skip
    with BackgroundServer(app) as url:
        yield url, last


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except playwright.Error as e:  # an install that cannot start (missing libraries): as good as missing
            pytest.skip(f"{CHROMIUM} does not start: {str(e).splitlines()[0]}")
        yield b
        b.close()


def _pixels(page) -> np.ndarray:
    h, w, data = page.evaluate(PAINTING_PIXELS)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)[..., :3]


def _settled(page, after: int) -> None:
    """Wait until a frame sent after `after` was painted and nothing is pending."""
    page.wait_for_function(f"() => studio.idle() && studio.stats.lastPainted > {after}", timeout=TIMEOUT)


def _stroke(page, box, points) -> list[tuple[int, int]]:
    """Drag the mouse through `points` (fractions of the canvas); the label-map pixels under them."""
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()
    return [(round((x - box["x"]) * 256 / box["width"] - 0.5), round((y - box["y"]) * 256 / box["height"] - 0.5))
            for x, y in at]  # fmt: skip


def test_drawing_with_the_mouse_reaches_the_server_as_ids(served, browser, tmp_path):
    url, last = served
    page = browser.new_page(viewport={"width": 1400, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    _settled(page, 0)  # the blank canvas, painted
    before = _pixels(page)
    box = page.locator("#labels").bounding_box()

    page.click(f'#classes button[data-id="{MOUNTAIN}"]')
    sent = page.evaluate("() => studio.stats.lastSent")
    mountain = _stroke(page, box, [(0.15, 0.3), (0.4, 0.32), (0.85, 0.3)])
    page.click(f'#classes button[data-id="{SEA}"]')
    sea = _stroke(page, box, [(0.1, 0.75), (0.5, 0.72), (0.9, 0.75)])
    _settled(page, sent)

    connection = max(last)  # this page's connection: the newest
    received = last[connection]
    assert received.model == "landscape-asapnet" and received.labels.shape == (256, 256)
    for x, y in mountain:
        assert received.labels[y, x] == MOUNTAIN, (x, y)
    for x, y in sea:
        assert received.labels[y, x] == SEA, (x, y)
    assert received.labels[128, 128] == SKY  # between the strokes: the blank canvas's class
    after = _pixels(page)
    assert not np.array_equal(after, before), "the painting did not change"
    assert np.array_equal(after, received.painting), "the page shows another painting than the server sent"
    assert page.locator("#rtt").inner_text().replace(".", "").isdigit()
    page.screenshot(path=str(tmp_path / "studio.png"))

    # Save labels: the page's own PNG encoder writes the ids the server received, exactly
    png = page.evaluate(SAVED_PNG)
    saved = cv2.imdecode(np.frombuffer(base64.b64decode(png), np.uint8), cv2.IMREAD_UNCHANGED)
    assert saved.dtype == np.uint8 and np.array_equal(saved, received.labels)

    # another model keeps the drawing (same size, same classes)
    sent = page.evaluate("() => studio.stats.lastSent")
    page.select_option("#model", "landscape-spade")
    _settled(page, sent)
    assert last[connection].model == "landscape-spade"
    assert np.array_equal(last[connection].labels, received.labels)
    assert page.locator("#random-style").is_enabled()
    assert not errors, errors
    page.close()


def test_pictures_and_the_webcam_reach_an_image_to_image_model(served, browser, tmp_path):
    url, last = served
    sketch = sketches.render(5, 300, 400)[0]  # another size: the page fits it to the model's (cover)
    cv2.imwrite(str(tmp_path / "sketch.png"), sketch[..., ::-1])
    page = browser.new_page(viewport={"width": 1400, "height": 800})
    page.goto(url)
    _settled(page, 0)
    page.select_option("#model", "sketch2landscape-pix2pix")
    page.wait_for_function("() => studio.idle() && studio.state.model.input === 'image'", timeout=TIMEOUT)
    assert page.locator("#image-tools").is_visible() and not page.locator("#label-tools").is_visible()
    assert page.locator("#random-style").is_disabled()

    sent = page.evaluate("() => studio.stats.lastSent")
    page.set_input_files("#upload-file", str(tmp_path / "sketch.png"))
    _settled(page, sent)
    received = max(last.values(), key=lambda p: p.connection)  # this page's connection: the newest
    assert received.model == "sketch2landscape-pix2pix" and received.labels is None
    # what arrived is the sketch, cover-fitted by the canvas and sent as JPEG: close, not exact
    assert np.abs(received.source.astype(int) - resize_cover(sketch, 256, 256)).mean() < 8
    assert np.array_equal(_pixels(page), received.painting)

    # the webcam: frames keep coming while it runs, one in flight, and stop with it
    sent = page.evaluate("() => studio.stats.lastPainted")
    page.click("#webcam")
    page.wait_for_function(f"() => studio.stats.lastPainted >= {sent} + 3", timeout=TIMEOUT)
    page.click("#webcam")
    page.wait_for_function("() => studio.idle()", timeout=TIMEOUT)
    assert page.evaluate("() => studio.stats.errors") == 0
    page.close()
