"""Start-up stays light: a one-shot `check` and a loop start never load the heavy libraries.

arch pulls scipy, statsmodels and matplotlib; importing it at module level made every command
(and every test subprocess) pay over a second before doing anything. Those libraries are imported
inside the functions that use them (stress, SPA, the report, the LLM client, Ray). These tests run
the real command, or import the real entry points, in a fresh interpreter and read ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("arch", "scipy", "statsmodels", "matplotlib", "ray", "openai", "scoringrules", "sklearn")

PROBE = """
import json, sys
{body}
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print("LOADED=" + json.dumps(loaded))
"""


def _loaded_after(body: str, cwd: Path) -> list[str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    line = next((x for x in out.stdout.splitlines() if x.startswith("LOADED=")), None)
    assert line is not None, out.stderr[-2000:]
    return json.loads(line.removeprefix("LOADED="))


def test_check_one_shot_loads_no_heavy_library(frozen_data: Path, tmp_path: Path) -> None:
    """`harness.py check trade.py` run to the end (gate, sandbox, probes, scoring) imports none of them."""
    body = (f"sys.argv = ['harness.py', 'check', {str(ROOT / 'trade.py')!r}, '--data', {str(frozen_data)!r}]\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "import harness\n"
            "code = harness.main(sys.argv[1:])\n"
            "assert code == 0, code\n")
    assert _loaded_after(body, tmp_path) == []


def test_loop_and_sandbox_start_load_no_heavy_library(tmp_path: Path) -> None:
    """What a loop start imports (harness, the loop, the commands, the offline proposer, every sandbox
    module the worker may load) brings in none of them: they wait until stress, statistics or the report."""
    body = ("import importlib, pkgutil\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "import harness, sandbox\n"
            "for name in ('alphaloop.run.loop', 'alphaloop.commands.check', 'alphaloop.commands.final',\n"
            "             'alphaloop.commands.finish', 'alphaloop.propose.offline', 'alphaloop.propose'):\n"
            "    importlib.import_module(name)\n"
            "for info in pkgutil.iter_modules(sandbox.__path__, 'sandbox.'):\n"
            "    importlib.import_module(info.name)\n")
    assert _loaded_after(body, tmp_path) == []
