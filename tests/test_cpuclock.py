"""The loop's CPU clock counts the sandbox workers' CPU while they live, each process once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from alphaloop.run.cpuclock import TreeClock

# A long-lived child (like a sandbox worker) that forks short-lived grandchildren (like frames), each
# burning CPU, waits for them, reports their CPU seconds and stays alive until told to go.
CHILD = textwrap.dedent("""
    import os, sys, time
    sys.stdin.readline()
    def burn(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
    for _ in range(5):
        pid = os.fork()
        if pid == 0:
            burn(0.2)
            os._exit(0)
        os.waitpid(pid, 0)
    t = os.times()
    print(t.children_user + t.children_system, flush=True)
    sys.stdin.read()
""")


def test_a_live_childs_reaped_grandchildren_are_counted_once() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        clock = TreeClock()  # finds the child (a worker started before the loop's first commit)
        child.stdin.write("go\n")
        child.stdin.flush()
        burned = float(child.stdout.readline())  # the grandchildren are gone; the child lives on
        counted = clock.lap()
    finally:
        child.communicate("")
    assert burned >= 0.9
    # counted while the child lives (getrusage's children figure would still say 0), the grandchildren once:
    # what they burned and the child's own forks and waits, not twice what they burned
    assert burned * 0.95 <= counted <= burned * 1.5, (burned, counted)
    assert clock.lap() < 0.5  # nothing counted again once the child has exited and been reaped
