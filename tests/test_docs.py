"""The README stays honest: its Python blocks run, and every CLI command has help and is documented."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from runlake.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNLAKE_ROOT", str(tmp_path / "lake"))
    blocks = _python_blocks()
    assert len(blocks) >= 6
    namespace: dict[str, object] = {}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {index + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message says which block
            pytest.fail(f"README python block {index + 1} failed: {exc!r}\n{block}")
    assert (tmp_path / "loss.png").stat().st_size > 10_000
    assert os.path.isdir(tmp_path / "lake" / "history")


def test_every_command_has_help_and_is_in_the_readme():
    text = README.read_text(encoding="utf-8")
    assert main.commands, "no commands registered"
    for name, command in main.commands.items():
        assert command.help and len(command.help) > 20, name
        assert f"`runlake {name}" in text, f"runlake {name} is not documented in the README"
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, name


def test_readme_commands_are_the_makefile_targets():
    text = README.read_text(encoding="utf-8")
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    assert re.search(r"^demo:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)
    assert "make test" in ci
