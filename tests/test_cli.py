"""The `lstmkit` command as a user runs it: a real process."""

import subprocess
import sys

from lstmkit import __version__


def run(*args):
    return subprocess.run([sys.executable, "-m", "lstmkit.cli", *args], capture_output=True, text=True, timeout=120)


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"lstmkit {__version__}"


def test_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0
    assert "usage: lstmkit" in result.stdout


def test_unknown_command_is_a_usage_error():
    result = run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
