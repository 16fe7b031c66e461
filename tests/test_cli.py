"""cli.py: one command line. `--help` lists every command and every FUSEBUILD_* setting;
each command's --help is plain usage (never a doit error); user errors are one line, no
traceback, exit code 1."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fusebuild import settings
from fusebuild.cli import COMMANDS

from conftest import REPO, gemm_spec


def fusebuild(*args, cwd=REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "fusebuild", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def test_cli_prints_error_without_traceback(tmp_path):
    (tmp_path / "bad.yaml").write_text(gemm_spec().replace("op: matmul", "op: matmull"))
    proc = subprocess.run([sys.executable, "-m", "fusebuild", "check", str(tmp_path / "bad.yaml")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{tmp_path / 'bad.yaml'}:11: graph[0].op: unknown op 'matmull'" in proc.stderr


def test_help_lists_every_command_and_every_setting():
    proc = fusebuild("--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: fusebuild ")
    for name in ("check", "schema", "why", "dry-run", "clean", "env", "gpu-validate"):
        assert name in COMMANDS
    for name in COMMANDS:
        assert f"\n    {name}" in proc.stdout, name
    for name in settings.SETTINGS:
        assert f"  {name}  " in proc.stdout, name


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_help_is_plain_usage(command):
    proc = fusebuild(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: fusebuild {command} "), proc.stdout
    assert proc.stderr == "" and "doit" not in proc.stdout.split("\n", 1)[0]


def test_check_of_a_missing_file_is_one_line(tmp_path):
    proc = fusebuild("check", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"{tmp_path / 'nope.yaml'}: "), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["why", "dry-run", "clean"])
def test_engine_commands_outside_a_project_say_so_in_one_line(tmp_path, command):
    proc = fusebuild(command, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no dodo.py" in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
