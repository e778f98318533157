"""The api-server's RelearnHook lives as long as the process: a model added to the
configuration file must reach the collection API and the page without a restart."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from relearn_airflow.hooks.relearn import RelearnHook

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, raw: dict, *, tick: int) -> None:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    os.utime(path, ns=(tick, tick))  # a distinct stamp even within one clock tick


def test_the_config_is_read_again_when_its_file_changes(tmp_path, caplog) -> None:
    raw = yaml.safe_load((ROOT / "relearn.yaml").read_text())
    path = tmp_path / "relearn.yaml"
    _write(path, raw, tick=1_000_000_000)
    hook = RelearnHook(config_path=str(path))
    before = hook.config.model_names
    assert hook.config is hook.config  # unchanged file: not parsed again

    added = {**raw["models"][0], "name": "added_later"}
    raw["models"].append(added)
    _write(path, raw, tick=2_000_000_000)
    assert hook.config.model_names == [*before, "added_later"]

    path.write_text("models: [")  # an edit in progress: the last good configuration stays
    os.utime(path, ns=(3_000_000_000, 3_000_000_000))
    assert hook.config.model_names == [*before, "added_later"]
    assert "keeping the configuration read before" in caplog.text

    raw["models"].pop()
    _write(path, raw, tick=4_000_000_000)
    assert hook.config.model_names == before
