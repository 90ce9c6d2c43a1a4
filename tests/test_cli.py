"""The command line: ``python -m tinyexit demo`` trains for real and prints falling losses."""
from __future__ import annotations

import re
import subprocess
import sys


def test_demo_trains_and_the_loss_falls():
    out = subprocess.run([sys.executable, "-m", "tinyexit", "demo", "--epochs", "2", "--n-train", "1000"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    losses = [float(v) for v in re.findall(r"training loss ([0-9.]+)", out)]
    assert len(losses) == 2 and losses[1] < losses[0]
    accuracies = [float(v) for v in re.findall(r"exit \d ([0-9.]+)%", out)]
    assert len(accuracies) == 2 and max(accuracies) > 30  # chance is 10%


def test_unknown_command_is_a_clear_error():
    result = subprocess.run([sys.executable, "-m", "tinyexit", "fly"], capture_output=True, text=True)
    assert result.returncode != 0 and "invalid choice" in result.stderr
