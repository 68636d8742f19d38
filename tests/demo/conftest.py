import pytest


@pytest.fixture(scope="session")
def landscape_model(tmp_path_factory):
    """A landscape-asapnet with random weights in our model format (the bundled model's config)."""
    from rtgan import models

    model = models.init_weights(models.get_model("landscape-asapnet"))
    path = tmp_path_factory.mktemp("model") / "landscape-asapnet"
    models.save(model, path)
    return path


@pytest.fixture(scope="session")
def landscape_engine(landscape_model, tmp_path_factory):
    """That model exported for ONNX Runtime at 128x128 (small: the demo tests are about the pipeline)."""
    from rtgan import models
    from rtgan.export import export

    out = tmp_path_factory.mktemp("engine") / "landscape-asapnet-128"
    return export(models.load(landscape_model), height=128, width=128, backend="onnxruntime", out=out, progress=False)


@pytest.fixture(scope="session")
def image_engine(tmp_path_factory):
    """A slim CycleGAN ResNet (official init) exported for ONNX Runtime at 128x128: an image-to-image
    engine, for the photo -> painting mode."""
    from rtgan import models
    from rtgan.export import export

    model = models.get_model("cyclegan-style-monet", ngf=8, netG="resnet_6blocks")
    out = tmp_path_factory.mktemp("engine") / "cyclegan-slim-128"
    return export(model, height=128, width=128, backend="onnxruntime", out=out, progress=False)
