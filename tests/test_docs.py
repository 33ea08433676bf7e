"""The README stays a short guide and the reference in docs/ stays complete and true to the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def _help(*args: str) -> str:
    out = subprocess.run([sys.executable, *args, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_readme_is_a_short_guide() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


def test_the_readme_opens_with_the_two_commands_and_ci_runs_its_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert block is not None
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert lines == ["pip install -e . && python harness.py",
                     "pip install -e '.[test,ray]' && python -m pytest -q -n 2"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if line.strip()]
    test_command = lines[1].split(" && ")[1]
    assert ci[-1] == test_command and "pip install -e '.[test,ray]'" in ci


def test_every_docs_link_of_the_readme_exists() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)", README.read_text(encoding="utf-8"))
    assert links and all((ROOT / link).is_file() for link in links)


@pytest.mark.parametrize("command", [("harness.py",), ("harness.py", "check"), ("harness.py", "final"),
                                     ("harness.py", "report"), ("prepare.py",)])
def test_every_flag_of_every_command_is_in_the_flags_reference(command: tuple[str, ...]) -> None:
    flags = set(FLAG.findall(_help(*command))) - {"--help"}
    documented = set(FLAG.findall((DOCS / "flags.md").read_text(encoding="utf-8")))
    assert flags and not flags - documented, f"undocumented flags of {' '.join(command)}: {sorted(flags - documented)}"


def test_the_loop_flags_table_quotes_the_parser_defaults() -> None:
    """A numeric default in the table is the parser's, so a default changed in config.py shows here."""
    sys.path.insert(0, str(ROOT))
    import harness

    defaults = {a.option_strings[-1]: a.default for a in harness.build_parser("run")._actions if a.option_strings}
    text = (DOCS / "flags.md").read_text(encoding="utf-8")
    table = text[text.index("## `python harness.py`: the research loop"):text.index("### How a run ends")]
    checked = 0
    for flag, default in re.findall(r"^\| `(--[a-z-]+)[^`]*` \| ([0-9.]+) \|", table, flags=re.M):
        assert float(default) == float(defaults[flag]), flag
        checked += 1
    assert checked >= 8


def test_the_stall_threshold_quoted_in_the_docs_is_the_config_one() -> None:
    from alphaloop.config import LoopConfig

    n = LoopConfig().stall_after
    assert f"Once there are {n} of them" in (DOCS / "loop.md").read_text(encoding="utf-8")
    assert f"after {n} in a row without a stop" in (DOCS / "flags.md").read_text(encoding="utf-8")


def test_the_readmes_sample_line_is_what_the_loop_prints(frozen_data: Path, tmp_path: Path) -> None:
    """The README quotes one plain line of a night; the offline search (seed 0, bundled sample) prints it."""
    import os

    quoted = re.search(r"^\[iter 4/50\] (parent .*?ENTERED top-3) \|", README.read_text(encoding="utf-8"), re.M)
    assert quoted is not None
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    res = subprocess.run([sys.executable, str(ROOT / "harness.py"), "--iterations", "4", "--stress-paths", "0",
                          "--workdir", str(tmp_path / "run"), "--data", str(frozen_data)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"[iter 4/4] {quoted.group(1)} |" in res.stdout


def test_the_readmes_default_limits_are_the_configs() -> None:
    from alphaloop.config import LoopConfig

    text = " ".join(README.read_text(encoding="utf-8").split())
    cfg = LoopConfig()
    assert (f"runs up to iteration {cfg.iterations} (`--iterations N`) and stops early after {cfg.max_fails} "
            "proposals in a row") in text


def test_the_prompt_bound_quoted_in_bench_md_is_the_one_the_caps_give() -> None:
    """docs/bench.md quotes the prompt's bound by construction as `bench/bench_prompt_size.py` prints it on its
    first line: the prompt files' length plus the caps' ``variable_bound()``, learnings ``PROMPT_CHARS``."""
    import importlib.util

    from alphaloop.propose.prompting import load_prompts
    from alphaloop.run.learnings import PROMPT_CHARS

    spec = importlib.util.spec_from_file_location("bench_prompt_size", ROOT / "bench" / "bench_prompt_size.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bound = bench.static_bound(*load_prompts())
    row = next(line for line in (DOCS / "bench.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `python bench/bench_prompt_size.py`"))
    want = f"{bound:,} characters (~{bound // 4:,} tokens), learnings {PROMPT_CHARS:,}"
    assert want in row, f"docs/bench.md's prompt-size row should quote: {want}"
