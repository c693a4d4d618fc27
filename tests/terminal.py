"""Run a command on a pseudo-terminal and read back the screen it leaves, as a person sees it.

A live progress bar redraws its line in place (carriage return, erase line, cursor up for a
display of several lines), so counting newlines in the bytes would count redraws, not lines.
``screen_lines`` replays the bytes the way a terminal does, for what ``bench`` uses.
"""
from __future__ import annotations

import os
import re
import select
import subprocess
import time

CSI = re.compile(r'\x1b\[([0-9;?]*)([A-Za-z])')


def screen_lines(output: str) -> list[str]:
    """The lines a terminal shows (scrollback included) after ``output`` was written to it."""
    lines, row, col = [''], 0, 0
    i = 0
    while i < len(output):
        ch = output[i]
        match = CSI.match(output, i) if ch == '\x1b' else None
        if match:
            arg, op = match.groups()
            if op == 'A':  # cursor up
                row = max(0, row - int(arg or 1))
            elif op == 'K':  # erase line (rich erases whole lines)
                lines[row] = ''
            i = match.end()
            continue
        if ch == '\r':
            col = 0
        elif ch == '\n':
            row += 1
            col = 0
            if row == len(lines):
                lines.append('')
        elif ch >= ' ':
            line = lines[row].ljust(col)
            lines[row] = line[:col] + ch + line[col + 1:]
            col += 1
        i += 1
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.rstrip() for line in lines]


def run_on_terminal(cmd: list[str], cwd, columns: int = 120, timeout: float = 1800,
                    env: dict | None = None) -> tuple[int, str]:
    """Run ``cmd`` with stdout and stderr on a pseudo-terminal; its exit status and output."""
    master, slave = os.openpty()
    env = {**os.environ, 'COLUMNS': str(columns), 'LINES': '50', 'TERM': 'xterm-256color',
           **(env or {})}
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.time() + timeout
    while True:
        if time.time() > deadline:
            proc.kill()
            raise TimeoutError(f'{cmd} ran past {timeout} s')
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other side closed: the command ended
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(), b''.join(chunks).decode('utf-8', errors='replace')
