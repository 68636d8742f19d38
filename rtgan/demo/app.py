"""The demo: a source, a segmenter and a painter in a pipeline, shown in a window or written headless.

One frame's path: `sources.*.read()` (capture thread) -> `Demo.segment` (segment thread: fit to the
engine's size, palette/ONNX segmenter) -> `Painter` (paint thread: `Engine.run`) -> `Demo.run`
(main thread: compose, show or write, keys).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from pathlib import Path

import numpy as np

from .. import weights
from ..data import landscapes, sketches
from ..errors import ConfigError
from ..utils.atomic import atomic_write_bytes
from ..utils.extras import MissingDependency
from .engines import Painter
from .imaging import cv2, palette_lut, resize_cover
from .paint import Canvas
from .pipeline import Packet, Pipeline, Stats
from .segment import OnnxSegmenter, PaletteSegmenter, fit_labels, fit_note
from .sources import CanvasSource, open_source
from .view import LabelColours, Recorder, Window, compose, display_problem, overlay_lines


@dataclasses.dataclass
class DemoConfig:
    # camera index, video, image file/folder, labels:PATH, scene; None: camera 0, or the scene when there is none
    source: str | None = None
    models: tuple[str, ...] = (weights.DEFAULT,)  # the first paints; `m` cycles through the rest
    size: tuple[int, int] | None = None  # (height, width) model directories are exported at; None: their own
    backend: str = "auto"
    precision: str = "auto"  # auto: bf16 where it measured faster and holds its floor (rtgan.engine.precision)
    segmenter: str = "palette"  # palette | onnx
    seg_model: str | None = None
    seg_mapping: str | None = None
    paper: str | None = "sky"  # the class unpainted paper becomes (palette segmenter)
    headless: bool | None = None  # None: headless when no window can open
    frames: int | None = None  # stop after this many shown frames (headless default 150)
    seconds: float | None = None  # stop after this long
    record: bool = True  # headless: write demo.mp4
    out: str = "out/demo"
    fps: float = 30.0  # pace of scenes, stills and the paint canvas
    scale: int = 2  # window zoom
    threads: int | None = None
    paint: bool = False  # start in paint mode
    canvas: str | None = None  # label PNG to start painting from
    loop: bool = False  # loop video files
    seed: int = 0
    style_images: tuple[str, ...] = ()  # SEAN: whole-image styles, cycled with t
    region_styles: tuple[str, ...] = ()  # SEAN: "CLASS=PATH", a style image for one class's regions
    walk_frames: int | None = None  # StyleGAN: painted frames per latent-walk segment (None: controls.WALK_FRAMES)


class _Switch:
    """The pipeline's source, swappable between the live source and the paint canvas; `painted` names
    the sources frames came from, in order (what latency.json reports)."""

    def __init__(self, source):
        self.current = source
        self.kind, self.fps = source.kind, source.fps
        self.painted: list[str] = []

    def set(self, source) -> None:
        self.current = source
        self.fps = source.fps

    def read(self):
        source = self.current
        frame = source.read()
        self.kind = source.kind
        name = getattr(source, "name", type(source).__name__)  # a caller's own source may have no name
        if frame is not None and name not in self.painted:
            self.painted.append(name)
        return frame

    def close(self) -> None:
        self.current.close()


class Demo:
    def __init__(self, config: DemoConfig, log=print):
        self.config, self.log = config, log
        self.out = Path(config.out)
        if config.segmenter not in ("palette", "onnx"):
            raise ConfigError(f"unknown segmenter {config.segmenter!r}; choose palette or onnx")
        if config.headless is False and (problem := display_problem()):  # before minutes of exporting
            raise MissingDependency(f"--window: {problem}; use --headless (writes demo.mp4, snapshots, latency.json)")
        self.painter = Painter(
            list(config.models),
            config.backend,
            config.threads,
            log,
            config.seed,
            config.size,
            config.precision,
            config.style_images,
            config.region_styles,
            config.walk_frames,
        )
        engine = self.painter.engine
        self.height, self.width = engine.height, engine.width
        ids = self.painter.canvas_ids  # an image-to-image first model: the landscape classes
        # models on the landscape ids get GauGAN's colours and names; others get stable pseudo-colours
        landscape = set(ids) <= set(landscapes.LABEL_IDS)
        self.palette = {i: landscapes.PALETTE[i] for i in ids} if landscape else None
        names = {i: landscapes.NAMES[i] for i in ids} if landscape else {i: str(i) for i in ids}
        self.lut = palette_lut(self.palette, max(256, max(ids) + 1))
        self.colours = LabelColours(self.lut)  # self.lut[labels], faster
        # a generator without a label map or image (StyleGAN) needs no camera: the scene only paces it
        # (and is there for the label-map models an `m` cycle may hold)
        spec = "scene" if config.source is None and self.painter.generative else config.source
        self.live = open_source(
            spec,
            self.height,
            self.width,
            fps=config.fps,
            loop=config.loop,
            palette=self.palette,
            names=names,
            log=log,
        )
        self.segmenter = self._segmenter(ids, names)
        # what fills in the input a packet lacks when `m` switches between label-map and image models
        self.painter.to_labels, self.painter.to_image = self.segmenter, sketches.drawing
        self.canvas = Canvas(self.height, self.width, names, self.palette, seed=config.seed)
        if config.canvas:
            self.canvas.load(config.canvas)
        elif landscape:
            self.canvas.labels[:] = landscapes.layout(config.seed, self.height, self.width)
        self.painter.attach(self.canvas)  # its noise brush feeds a local-noise input (OASIS)
        self.source = _Switch(CanvasSource(self.canvas, config.fps) if config.paint else self.live)
        self.painting_mode = config.paint
        self.stats = Stats()
        self.pipeline = Pipeline(self.source, self.segment, self.painter)
        self._stop = threading.Event()
        self.interrupted = False
        self.snapshots = 0
        self.help = False
        self._summary, self._summary_at = {}, 0.0
        self.window: Window | None = None
        self.recorder: Recorder | None = None
        self._fitted: set[tuple] = set()  # frame shapes whose fitting to the engine was logged
        self._shown_panels = 2  # panels in the last frame shown, for mapping clicks on the legend

    def _segmenter(self, ids, names):
        if self.config.segmenter == "onnx":
            if not (self.config.seg_model and self.config.seg_mapping):
                raise ConfigError("--segmenter onnx needs --seg-model MODEL.onnx and --seg-mapping CLASSES.json")
            by_name = {v: k for k, v in names.items()}
            return OnnxSegmenter(self.config.seg_model, self.config.seg_mapping, ids, by_name)
        if self.palette is None:
            return None  # no class colours: camera frames cannot be read as drawings
        paper = None
        if self.config.paper:
            paper = landscapes.ID.get(self.config.paper)
            if paper not in self.palette:
                raise ConfigError(f"paper class {self.config.paper!r} is not one of this model's classes")
        return PaletteSegmenter(self.palette, paper=paper)

    # --- the segment stage (its own thread) ---
    def segment(self, packet: Packet) -> Packet:
        image_model = self.painter.takes_image
        if packet.image is not None:
            self._note_fit("input", packet.image.shape)
            packet.image = resize_cover(packet.image, self.height, self.width)
            if not image_model:  # an image-to-image model takes the frame itself: no segmentation
                if self.segmenter is None:
                    raise ConfigError("this model has no class colours: give --segmenter onnx or a labels: source")
                packet.labels = self.segmenter(packet.image)
        else:
            self._note_fit("labels", packet.labels.shape)
            packet.labels = fit_labels(packet.labels, self.height, self.width)
            if image_model:  # a label map (scene, canvas) is shown to it as a pencil drawing of its outlines
                packet.image = sketches.drawing(packet.labels)
        return packet

    def _note_fit(self, kind: str, shape: tuple) -> None:
        """Say once per frame shape how it is cropped and resized to the engine's size: silently
        cropping a user's label map would look like a bug."""
        if (kind, shape[:2]) not in self._fitted:
            self._fitted.add((kind, shape[:2]))
            note = fit_note(kind, shape, self.height, self.width)
            if note:
                self.log(note)

    # --- the display stage (main thread) ---
    def frame(self, packet: Packet) -> np.ndarray:
        now = time.perf_counter()
        if now - self._summary_at > 0.25:  # medians over the ring buffers: a few times a second, not per frame
            self._summary, self._summary_at = self.stats.summary(), now
        lines = overlay_lines(
            self._summary,
            self.stats.fps(),
            packet.model,
            f"{self.painter.engine.backend_name} {self.painter.engine.precision}",
            self.pipeline.paused.is_set(),
            self.recorder is not None,
            self.painting_mode,
        )
        # under the panels shown: 2 in paint mode, but 3 for a camera frame still in flight after `p`
        legend = self.canvas.legend(self._legend_width(packet)) if self.painting_mode else None
        controls = self.painter.status()
        if self.painting_mode and self.canvas.noise_mode and self.painter.takes_noise:
            c = self.canvas
            controls = f"NOISE brush region {c.region}/{c.noise_classes - 1}  {controls}".strip()
        if controls:
            lines.append(controls)
        scale = self.config.scale if self.window is not None else 1
        labels = None if packet.labels is None else self.colours(packet.labels)
        return compose(packet.image, labels, packet.painting, lines, legend, self.help, scale)

    def _legend_width(self, packet: Packet) -> int:
        self._shown_panels = 1 + (packet.image is not None) + (packet.labels is not None)
        return self.width * self._shown_panels

    def snapshot(self, frame: np.ndarray) -> Path:
        self.snapshots += 1
        path = self.out / f"snapshot-{self.snapshots:03d}.png"
        ok, data = cv2().imencode(".png", frame)
        atomic_write_bytes(path, data.tobytes())
        return path

    def _on_signal(self, signum, _frame) -> None:
        self.interrupted = True
        self._stop.set()

    def run(self) -> int:
        c = self.config
        problem = display_problem() if c.headless is None else None
        headless = c.headless if c.headless is not None else problem is not None
        if problem:
            self.log(f"{problem}: running headless (--headless), writing to {self.out}")
        frames = c.frames if c.frames is not None else (150 if headless and c.seconds is None else None)
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                handlers[s] = signal.signal(s, self._on_signal)
        self.out.mkdir(parents=True, exist_ok=True)
        self.recorder = Recorder(self.out / "demo.mp4", c.fps) if headless and c.record else None
        window = None if headless else Window("rtgan", c.scale, self._on_mouse)
        if window is not None:
            window.trackbar("brush", 64, self.canvas.size, lambda v: setattr(self.canvas, "size", max(1, v)))
            window.trackbar("class", len(self.canvas.ids) - 1, 0, self.canvas.select)
        self.window = window
        self.log(
            f"painting with {self.painter.name} ({self.painter.engine.backend_name} {self.painter.engine.precision}"
            f"{', fused kernels' if self.painter.engine.kernels else ''}), "
            f"{self.height}x{self.width}; "
            + ("press h for help" if window else f"{frames} frames" if frames else f"{c.seconds:g} s")
        )
        self.pipeline.start()
        self.stats = Stats()
        deadline = time.perf_counter() + c.seconds if c.seconds is not None else None
        last, shown = None, 0
        try:
            while not self._stop.is_set():
                packet = self.pipeline.get(0.02)
                if packet is not None:
                    t0 = time.perf_counter()
                    last = packet
                    image = self.frame(packet)
                    if self.recorder is not None:
                        self.recorder.write(image)
                    if window is not None:
                        window.show(image)
                    packet.ms["display"] = (time.perf_counter() - t0) * 1e3
                    self.stats.record(packet, time.perf_counter())
                    shown += 1
                    if headless and shown in (1, max(1, (frames or 0) // 2)):
                        self.snapshot(image)
                if frames is not None and shown >= frames:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                if self.pipeline.finished:
                    break
                if window is not None:
                    key = window.key(1)
                    if key >= 0 and not self._key(key, last, window):
                        break
                    if not window.is_open():
                        break
        finally:
            self._finish(last, headless, handlers)
        return 130 if self.interrupted else (1 if self.pipeline.error else 0)

    def _finish(self, last, headless, handlers) -> None:
        stopped = self.pipeline.stop()
        if self.recorder is not None:
            path = self.recorder.close()
            if path:
                self.log(f"wrote {path} ({self.recorder.frames} frames)")
            self.recorder = None
        if last is not None and headless:
            self.log(f"wrote {self.snapshot(self.frame(last))}")
        if self.window is not None:
            self.window.close()
        for s, h in handlers.items():
            signal.signal(s, h)
        if self.pipeline.error is not None:
            stage, error = self.pipeline.error
            self.log(f"stopped: the {stage} stage failed: {type(error).__name__}: {error}")
        elif self.interrupted:
            self.log("interrupted: stopped cleanly")
        elif self.pipeline.ended:
            self.log(f"source ended ({self.pipeline.ended})")
        if not stopped:
            self.log("a stage did not stop within 5 s; leaving it to the process exit")
        feed = getattr(self.live, "name", type(self.live).__name__)  # a caller's own source may have no name
        summary = {
            **self.stats.summary(),
            "dropped": self.pipeline.dropped,
            "model": self.painter.name,
            "backend": self.painter.engine.backend_name,
            "precision": self.painter.engine.precision,
            "precision_reason": self.painter.engine.precision_reason,
            "kernels": self.painter.engine.kernels,  # the fused CPU kernels ran (kernels_reason: why or why not)
            "kernels_reason": self.painter.engine.kernels_reason,
            "size": [self.height, self.width],
            "source": feed,  # what the feed was: "scene" when no camera was there
            "requested_source": self.config.source,  # null: none given (camera 0, else the scene)
            "painted": self.source.painted,  # the sources frames came from: the feed and/or "canvas"
        }
        atomic_write_bytes(self.out / "latency.json", (json.dumps(summary, indent=2) + "\n").encode())
        self.summary = summary
        self.log(format_summary(summary))

    # --- keys and mouse (main thread) ---
    def _key(self, key: int, last: Packet | None, window: Window) -> bool:
        """Handle one key; False to quit."""
        ch = chr(key) if key < 128 else ""
        canvas = self.canvas
        if key in (27, ord("q")):
            return False
        if ch == " ":
            paused = not self.pipeline.paused.is_set()
            self.pipeline.paused.set() if paused else self.pipeline.paused.clear()
        elif ch == "s" and last is not None:
            self.log(f"wrote {self.snapshot(self.frame(last))}")
        elif ch == "r":
            if self.recorder is None:
                self.recorder = Recorder(self.out / f"record-{time.strftime('%Y%m%d-%H%M%S')}.mp4", self.config.fps)
                self.log("recording (r to stop)")
            else:
                self.log(f"wrote {self.recorder.close()}")
                self.recorder = None
        elif ch == "m":
            if len(self.painter.models) > 1:
                self.painter.next_model()
            else:
                self.log("one model loaded: give --model more than once to cycle with m")
        elif ch == "n":
            if not self.painter.new_style():
                self.log(f"{self.painter.name} has no style input (no z, style code or style codes)")
        elif ch == "t":
            name = self.painter.next_style_image()
            self.log(f"style image {name}" if name else "no style images: give --style-image PATH (SEAN)")
        elif (
            ch in "[]"
            and self.painter.controls.scalar is not None
            and not (self.painting_mode and not self.painter.generative)
        ):
            value = self.painter.nudge(1 if ch == "]" else -1)
            self.log(f"{self.painter.controls.scalar.name} {value:.2f}")
        elif ch == "h":
            self.help = not self.help
        elif ch == "p":
            self.painting_mode = not self.painting_mode
            if self.painting_mode and last is not None and last.labels is not None and self.source.current is self.live:
                canvas.set_labels(last.labels)  # paint over what was on screen
            self.source.set(CanvasSource(canvas, self.config.fps) if self.painting_mode else self.live)
        elif self.painting_mode:
            self._paint_key(key, ch, window)
        return True

    def _paint_key(self, key: int, ch: str, window: Window) -> None:
        canvas = self.canvas
        if ch == "b":
            if not self.painter.takes_noise:
                self.log(f"{self.painter.name} has no local-noise input (OASIS exported with --set noise_regions=M)")
            else:
                self.log("noise brush: each stroke a new z" if canvas.toggle_noise() else "class brush")
        elif ch == "x":
            canvas.clear_noise()
            self.log("noise map cleared")
        elif ch == "f":
            canvas.fill_mode = not canvas.fill_mode
            self.log("fill mode" if canvas.fill_mode else "brush mode")
        elif ch == "u" or key == 26:  # u or Ctrl-Z
            canvas.undo()
        elif ch == "c":
            canvas.clear()
        elif ch in "[]":
            canvas.size = int(np.clip(canvas.size + (-2 if ch == "[" else 2), 1, 64))
            window.set_trackbar("brush", canvas.size)
        elif ch.isdigit() or ch in "-=":
            index = (int(ch) - 1) % 10 if ch.isdigit() else canvas.brush + (1 if ch == "=" else -1)
            canvas.select(index)
            window.set_trackbar("class", canvas.brush)
        elif ch == "w":
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.log(f"wrote {canvas.save(self.out / f'canvas-{stamp}.png')}")
        elif ch == "o":
            path = self.config.canvas or max(self.out.glob("canvas-*.png"), default=None)
            if path is None:
                self.log("nothing to load: save with w first, or start with --canvas PNG")
            else:
                canvas.load(path)
                self.log(f"loaded {path}")

    def _on_mouse(self, event: int, x: int, y: int, flags: int) -> None:
        if not self.painting_mode:
            return
        cv = cv2()
        canvas = self.canvas
        if y >= self.height:  # the legend strip under the panels (or the help strip under it)
            index = canvas.class_at(x, y - self.height, self.width * self._shown_panels)
            if event == cv.EVENT_LBUTTONDOWN and index is not None:
                canvas.select(index)
                self.window.set_trackbar("class", canvas.brush)
            return
        if x >= self.width:  # the painting panel
            return
        if event == cv.EVENT_LBUTTONDOWN:
            canvas.press(x, y)
        elif event == cv.EVENT_MOUSEMOVE and flags & cv.EVENT_FLAG_LBUTTON:
            canvas.drag(x, y)
        elif event == cv.EVENT_LBUTTONUP:
            canvas.release()
        elif event == cv.EVENT_RBUTTONDOWN:
            canvas.pick(x, y)
            self.window.set_trackbar("class", canvas.brush)


def format_summary(s: dict) -> str:
    lines = [f"{s['frames_shown']} frames in {s['wall_s']:.1f} s, {s.get('fps', 0):.1f} fps shown"]
    for name in ("capture", "segment", "paint", "display", "end_to_end"):
        if f"{name}_ms" in s:
            m = s[f"{name}_ms"]
            lines.append(f"  {name:<11} median {m['median']:7.1f} ms   p90 {m['p90']:7.1f} ms")
    lines.append(f"  dropped (latest-frame-wins): {s['dropped']}")
    return "\n".join(lines)
