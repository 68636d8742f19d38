"""The README's two commands stay what CI and users run."""

from pathlib import Path

ROOT = Path(__file__).parents[1]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```bash\n")[1:3]
    return [b.split("```")[0].strip() for b in blocks]


def test_ci_runs_the_readme_test_command():
    main, tests = _commands()
    assert "python -m rtgan." in main and "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_readme_export_snippet_runs(tmp_path, monkeypatch):
    """The README's export example is self-contained: it runs as printed, on the bundled model."""
    import numpy as np
    import pytest

    pytest.importorskip("openvino")
    text = (ROOT / "README.md").read_text()
    snippet = text.split("## Export and engines", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    from rtgan.export import exporter

    monkeypatch.setattr(exporter, "CACHE", tmp_path)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["image"].shape == (256, 256, 3) and scope["image"].dtype == np.uint8
    assert scope["path"].parent == tmp_path


def test_readme_backend_table_is_the_formats_table():
    from rtgan.formats import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text()


def test_readme_preset_table_reads_the_signatures():
    from rtgan.models.presets import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text()
