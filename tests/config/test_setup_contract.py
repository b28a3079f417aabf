"""The set-up contract: README, .ci/run, .env.example and the settings agree with each other."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_CALL = re.compile(
    r"""(?:env_(?:str|int|bool|list|float|rate)|_required_in_production)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
)
SCRIPT_VAR = re.compile(r"\$\{?(VIGIL_[A-Z0-9_]+|PYTHON)\b")
#: A read outside config/env.py's helpers (ML code that must not import Django reads os.environ).
OS_ENV_READ = re.compile(r"""os\.(?:environ\.get|getenv)\(\s*["'](VIGIL_[A-Z0-9_]+)["']""")


def _documented() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def _read_by_code() -> set[str]:
    names: set[str] = set()
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text()
        names.update(ENV_CALL.findall(text))
        if "bench" not in path.parts:  # benchmarks set up their own throw-away environment
            names.update(OS_ENV_READ.findall(text))
    for script in (ROOT / "scripts").glob("*.sh"):
        names.update(SCRIPT_VAR.findall(script.read_text()))
    return names


def test_every_variable_the_code_reads_is_documented():
    missing = _read_by_code() - _documented()
    assert not missing, f"read by the code but not in .env.example: {sorted(missing)}"


def test_env_example_documents_nothing_stale():
    stale = _documented() - _read_by_code()
    assert not stale, f"in .env.example but read nowhere: {sorted(stale)}"


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("**Test**", 1)[1]
    block = re.search(r"```sh\n(.+?)\n```", section, re.S)
    assert block, "README has no test command block after **Test**"
    return block.group(1).strip()


def _readme_run_command() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("**Run**", 1)[1]
    block = re.search(r"```sh\n(.+?)\n```", section, re.S)
    assert block, "README has no run command block after **Run**"
    return block.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    command = _readme_test_command()
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines[-1] == command, f".ci/run ends with {lines[-1]!r}, README says {command!r}"


def test_readme_commands_exist_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    for command in (_readme_test_command(), _readme_run_command()):
        target = command.removeprefix("make ").strip()
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
