"""The ``relearn`` command itself: light start-up, extension commands, one-line input errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from tests.conftest import run_cli

if TYPE_CHECKING:
    from pathlib import Path

HEAVY = ("torch", "mlflow", "pandas", "numpy", "sklearn", "matplotlib", "great_expectations")


def test_db_url_imports_no_heavy_library() -> None:
    """Building the whole parser (extensions included) and running db-url stays light."""
    script = textwrap.dedent(
        f"""
        import sys
        from relearn.cli import main
        code = main(["db-url", "mlflow"])
        print("exit", code, "heavy:", *(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    url, outcome = result.stdout.splitlines()
    assert url.endswith("/mlflow")
    assert outcome == "exit 0 heavy:"


def _extension(tmp_path: Path, body: str, commands: str) -> dict[str, str]:
    """An installed extension package: a module plus a dist-info with ``relearn.cli`` entries."""
    (tmp_path / "relearn_ext_demo.py").write_text(textwrap.dedent(body))
    dist = tmp_path / "relearn_ext_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: relearn-ext-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[relearn.cli]\n{commands}\n")
    return {"PYTHONPATH": str(tmp_path)}


EXTENSION = """
    import sys

    from relearn.services import NoChampionError


    def register(commands):
        hello = commands.add_parser("hello", help="say hello")
        hello.add_argument("--name", default="world")
        hello.set_defaults(handler="relearn_ext_demo:hello")
        summary = commands.add_parser("summary", help="replaces the built-in one")
        summary.set_defaults(handler="relearn_ext_demo:summary")
        commands.add_parser("orphan").set_defaults(handler="relearn_ext_demo:no_champion")


    def hello(args):
        print(f"hello {args.name}")
        return 3


    def summary(args):
        print("extension summary")
        return 0


    def no_champion(args):
        raise NoChampionError("churn")
"""


def test_extension_commands_come_from_the_entry_point_group(tmp_path: Path) -> None:
    env = _extension(tmp_path, EXTENSION, "demo = relearn_ext_demo:register")

    hello = run_cli("hello", "--name", "relearn", env=env)
    assert (hello.returncode, hello.stdout) == (3, "hello relearn\n")

    # An extension takes a built-in name over (how stack/demo/simulate move to the dev package).
    replaced = run_cli("summary", env=env)
    assert (replaced.returncode, replaced.stdout) == (0, "extension summary\n")

    # A handler's NoChampionError is one line, exit 1.
    orphan = run_cli("orphan", env=env)
    assert orphan.returncode == 1
    assert orphan.stderr.splitlines() == [
        "relearn: 'churn' has no champion yet: run `relearn bootstrap --model churn`"
    ]
    assert run_cli("config", env=env).returncode == 0


def test_a_broken_extension_does_not_take_the_built_in_commands_down(tmp_path: Path) -> None:
    env = _extension(tmp_path, "raise ImportError('half installed')\n", "x = relearn_ext_demo:f")

    result = run_cli("config", env=env)

    assert result.returncode == 0
    assert "ignoring commands of relearn_ext_demo:f (half installed)" in result.stderr


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"models:\n  - name: churn\n   kind: [\n", "not valid YAML: "),
        (b"models:\n  - name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 21)"),
        (b"models:\n  - name: x\n", "models[0].name: String should match pattern"),
    ],
    ids=["yaml-syntax", "not-utf8", "validation"],
)
def test_a_bad_configuration_file_is_one_line_naming_it(
    content: bytes, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)

    line = _one_error_line(run_cli("--config", str(path), "config"))

    assert line.startswith(f"relearn: invalid configuration in {path}: ")
    assert expected in line


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    line = _one_error_line(
        run_cli("train", "--dataset", "d.csv", "--output-dir", str(tmp_path), "--epochs", "-3")
    )
    assert line == "relearn train: invalid option: epochs: Input should be greater than 0"

    usage = _one_error_line(run_cli("train", "--dataset", "d.csv", "--epochs", "x"))
    assert usage.startswith("relearn train: ")
    assert "argument --epochs: invalid int value: 'x'" in usage
    assert usage.endswith("(see relearn train --help)")

    env = {"RELEARN__TRAINING__EPOCHS": "[1,"}
    line = _one_error_line(run_cli("config", env=env))
    assert line.startswith("relearn: environment variable RELEARN__TRAINING__EPOCHS: not valid")


def test_the_projects_env_file_sets_what_the_environment_does_not(tmp_path: Path) -> None:
    """`make run` exports .env; a command typed by hand must find the stack on the same ports."""
    (tmp_path / ".env").write_text(
        "# ports of the local stack\nRELEARN_PG_PORT=6543  # mine\nexport RELEARN_MLFLOW_PORT=5111"
    )
    unset = ("RELEARN_PG_PORT", "RELEARN_MLFLOW_PORT")
    project = {"RELEARN_ENV_FILE": ".env"}  # the test session reads no .env of its own

    def db_url(**env: str) -> str:
        result = run_cli("db-url", cwd=tmp_path, unset=unset, env={**project, **env})
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert db_url().endswith(":6543/relearn")
    assert db_url(RELEARN_PG_PORT="7654").endswith(":7654/relearn")
    assert db_url(RELEARN_ENV_FILE="").endswith(":5433/relearn")  # the default port

    for content, error in (
        ("RELEARN_PG_PORT=6543\nnot a line\n", "line 2: expected NAME=value, as in .env.example"),
        ("RELEARN_PG_PORT='6543'\n", "RELEARN_PG_PORT=\"'6543'\" is not a TCP port"),  # as make
        (b"RELEARN_PG_PORT=\xff\n", ".env: cannot be read as UTF-8 text"),
    ):
        path = tmp_path / ".env"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        result = run_cli("db-url", cwd=tmp_path, unset=unset, env=project)
        assert error in _one_error_line(result)


def test_a_named_env_file_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    """A typo in RELEARN_ENV_FILE must not fall back to the default ports in silence."""
    missing = tmp_path / "prod.env"
    line = _one_error_line(run_cli("db-url", env={"RELEARN_ENV_FILE": str(missing)}))
    assert line == (
        f"relearn: RELEARN_ENV_FILE={missing} does not exist: name an existing file, or set it "
        "empty to read none"
    )


def test_help_lists_the_built_in_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("db-url", "migrate", "reinforce", "train", "drift", "ab", "registry"):
        assert command in result.stdout
