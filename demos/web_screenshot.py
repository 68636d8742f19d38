"""Screenshot of the web studio after a scripted drawing session (how docs/web-studio.png is made).

    python demos/web_screenshot.py --out docs/web-studio.png [--model landscape-spade --seed 3]

Serves the studio on a free localhost port, opens it in headless Chromium (Debian's `chromium`,
driven by Playwright), paints a landscape with the mouse as a user would (a mountain ridge and a fill
under it, sea, grass, trees, clouds, snow), waits until the painting shows the last stroke, and saves
the whole page.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rtgan.data import landscapes

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
TIMEOUT = 60_000

# (class, brush size, points as fractions of the canvas); "fill" is a click of the fill tool. A stroke
# starts inside the canvas (the press must hit it) and may leave it (the canvas captures the pointer)
SESSION = [
    ("mountain", 14, [(0.005, 0.56), (0.12, 0.36), (0.24, 0.3), (0.36, 0.44), (0.5, 0.26), (0.62, 0.22),
                      (0.78, 0.4), (0.9, 0.34), (1.05, 0.42)]),
    ("mountain", "fill", [(0.5, 0.6)]),
    ("snow", 10, [(0.2, 0.33), (0.26, 0.31), (0.3, 0.36)]),
    ("snow", 10, [(0.55, 0.26), (0.62, 0.23), (0.68, 0.28)]),
    ("sea", 40, [(0.005, 0.66), (1.05, 0.66)]),
    ("sea", 40, [(0.005, 0.74), (1.05, 0.72)]),
    ("grass", 44, [(0.005, 0.86), (1.05, 0.84)]),
    ("grass", 44, [(0.005, 0.97), (1.05, 0.97)]),
    ("tree", 22, [(0.08, 0.92), (0.1, 0.78), (0.14, 0.9)]),
    ("tree", 26, [(0.82, 0.93), (0.86, 0.76), (0.92, 0.9), (0.97, 0.8)]),
    ("clouds", 22, [(0.1, 0.12), (0.3, 0.1), (0.22, 0.15)]),
    ("clouds", 18, [(0.6, 0.08), (0.8, 0.11)]),
]  # fmt: skip


def draw(page, box, points) -> None:
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/web-studio.png")
    ap.add_argument("--model", action="append", dest="models", help="models to serve, the first shown")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=570)
    ap.add_argument("--seed", type=int, default=3, help="the style seed (models with a style)")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from rtgan import weights
    from rtgan.web import create_app
    from rtgan.web.server import BackgroundServer

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    # SPADE first: its painting is the most detailed of the bundled models (the page opens on the first)
    first = "landscape-spade"
    models = args.models or [first, *[m for m in weights.BUNDLED if m != first]]
    app = create_app(models, size=(256, 256))
    with BackgroundServer(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height}, device_scale_factor=1)
        page.goto(url)
        page.wait_for_function("() => window.studio && studio.idle() && studio.stats.painted > 0", timeout=TIMEOUT)
        if page.evaluate("() => studio.state.model.style"):
            page.evaluate(f"() => studio.style({args.seed})")
        box = page.locator("#labels").bounding_box()
        for name, size, points in SESSION:
            page.click(f'#classes button[data-id="{landscapes.ID[name]}"]')
            page.click('#tool button[data-tool="fill"]' if size == "fill" else '#tool button[data-tool="brush"]')
            if size != "fill":
                page.evaluate(f"() => studio.setSize({size})")
            draw(page, box, points)
        page.click(f'#classes button[data-id="{landscapes.ID["tree"]}"]')  # the brush shown selected
        sent = page.evaluate("() => studio.stats.lastSent")
        page.wait_for_function(f"() => studio.idle() && studio.stats.lastPainted >= {sent}", timeout=TIMEOUT)
        page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + 0.9 * box["height"])  # the brush cursor
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
