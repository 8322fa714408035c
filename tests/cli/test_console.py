"""Output off a terminal (pipes, CI logs, files): tables print whole, words never broken inside cells."""

import subprocess
import sys


def test_a_wide_table_printed_to_a_pipe_keeps_every_word_whole():
    script = (
        "from rich.table import Table\n"
        "from segdeploy.cli import console\n"
        "table = Table(title='bench')\n"
        "for index in range(14):\n"
        "    table.add_column(f'column number {index}')\n"
        "table.add_row(*(['model_int8_cpu.onnx@onnxruntime'] * 14))\n"
        "console.out.print(table)\n"
    )
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.count("model_int8_cpu.onnx@onnxruntime") == 14  # every cell on one line, unbroken
    assert printed.count("column number 13") == 1
