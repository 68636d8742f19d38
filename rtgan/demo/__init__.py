"""The live demo: webcam / video / scene -> segmentation -> painting, a paint canvas, headless output.

    python -m rtgan.demo                       # webcam 0, or the animated scene when there is none
    python -m rtgan.demo --source video.mp4    # or an image, a folder, labels:PNG_OR_DIR, scene
    python -m rtgan.demo --paint               # GauGAN-style painting with the mouse
    python -m rtgan.demo --headless --frames 300 --out out/demo
    python -m rtgan.demo --model SEAN_ENGINE --style-image face.png --region-style 4=eyes.png
    python -m rtgan.demo --model STYLEGAN_ENGINE   # no label map: a latent walk, [ ] truncation

Runs engines, not PyTorch modules: a bundled model is exported once (cached) and opened with the
fastest runtime installed.
"""

from .app import Demo, DemoConfig

__all__ = ["Demo", "DemoConfig"]
