"""The README's commands run as written, in a fresh copy of the project's examples: every
`rnnc` line of its shell blocks exits 0, and its transcript of an error is what rnnc
prints."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    """The text of every fenced block of ``language`` ("" for a block without one)."""
    blocks, current, kind = [], None, None
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, kind = [], line[3:].strip()
            else:
                if kind == language:
                    blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _commands() -> list[str]:
    """Every rnnc command of the README's shell blocks, comments dropped, `a && b` split."""
    found = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "rnnc":
                    found.append(shlex.join(words))
    return found


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """What a fresh clone holds that the commands read: the specs and the bad examples."""
    folder = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "specs", folder / "specs")
    shutil.copytree(ROOT / "tests" / "bad_specs", folder / "tests" / "bad_specs")
    return folder


def _rnnc(words: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnncompiler.cli", *words], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_the_readme_has_the_commands_it_should():
    commands = _commands()
    assert len(commands) >= 15
    assert any(c.startswith("rnnc train ") for c in commands)
    assert not any("[" in c for c in commands)  # no optional parts to fill in


def test_every_command_runs_as_written(clone):
    """In order, as a reader types them (later ones read what earlier ones wrote)."""
    for command in _commands():
        result = _rnnc(shlex.split(command)[1:], clone)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        assert "Traceback" not in result.stderr


def test_the_error_transcript_is_what_rnnc_prints(clone):
    transcripts = [b for b in _blocks("") if b.startswith("$ rnnc ")]
    assert transcripts
    for block in transcripts:
        command, *expected = block.strip("\n").splitlines()
        result = _rnnc(shlex.split(command[2:])[1:], clone)
        assert result.returncode == 1
        assert result.stderr.splitlines() == expected
