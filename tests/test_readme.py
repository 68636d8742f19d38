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
