"""The command line: ``python -m tinyexit demo`` trains baseline and L2W for real and prints both."""
from __future__ import annotations

import re
import subprocess
import sys


def test_demo_trains_both_methods_and_their_losses_fall():
    out = subprocess.run([sys.executable, "-m", "tinyexit", "demo", "--epochs", "2", "--n-train", "1000"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    sections = re.split(r"^--- (baseline|l2w)$", out, flags=re.M)
    by_method = dict(zip(sections[1::2], sections[2::2]))
    assert set(by_method) == {"baseline", "l2w"}
    for method, text in by_method.items():
        losses = [float(v) for v in re.findall(r"epoch \d+: loss ([0-9.]+)", text)]
        assert len(losses) == 2 and losses[1] < losses[0], (method, losses)
        accuracy_line = re.search(r"anytime accuracy per exit: (.*)", text).group(1)
        accuracies = [float(v) for v in re.findall(r"([0-9.]+)%", accuracy_line)]
        assert len(accuracies) == 4 and max(accuracies) > 15, (method, accuracies)  # chance is 10%
    assert re.search(r"q=0\.5 +baseline +[0-9.]+ @ [0-9.]+ +l2w +[0-9.]+ @ [0-9.]+", out)


def test_unknown_command_is_a_clear_error():
    result = subprocess.run([sys.executable, "-m", "tinyexit", "fly"], capture_output=True, text=True)
    assert result.returncode != 0 and "invalid choice" in result.stderr
