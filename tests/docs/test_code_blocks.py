"""Every Python and shell code block of README.md and docs/ runs, as a reader would run it.

Each block runs in a fresh folder laid out like the repository's root (``examples/`` copied so
that blocks may write beside the sample clip, everything else linked, no ``../shared`` beside
it): Python blocks with this Python, shell blocks with bash (``-e -o pipefail``) and this
Python's ``bin/`` first on ``PATH``. A comment on the line before a block changes that:
``<!-- skip: REASON -->`` skips it with the reason; ``<!-- setup: REASON -->`` leaves out the
commands that make a virtual environment or install, and runs the rest.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200
TIMEOUT_S = 300
# fence language -> how the block runs; other fences (json, text, ...) are not code to run
RUNNERS = {"python": "python", "bash": "shell", "sh": "shell", "console": "console"}
MARKS = ("skip", "setup")
FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
MARK = re.compile(r"^<!--\s*([\w-]+):\s*(.*?)\s*-->$")
# what a `setup` block may leave out: making a venv, activating it, installing into it
SETUP = re.compile(
    r"^(python3? -m venv\b|(\.|source) \S+/bin/activate$|(python3? -m )?pip install\b)"
)
# a clone has none of these; blocks must not see (or write into) them
NOT_IN_A_CLONE = {
    *(".git", ".venv", "site", "out", "runs", "build", "dist", "logs"),
    *(".cache", ".ruff_cache", ".pytest_cache", ".mypy_cache"),
}


@dataclass(frozen=True)
class Block:
    """One fenced code block and the mark on the line before it, if any."""

    doc: Path
    line: int  # of the opening fence, from 1
    lang: str
    code: str
    mark: str | None = None
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order.

    Raises:
        ValueError: A block is not closed.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{path}:{start + 1}: the code block is not closed")
        mark = MARK.match(lines[start - 1].strip()) if start else None
        kind, reason = (mark.group(1), mark.group(2)) if mark else (None, "")
        blocks.append(Block(path, start + 1, fence.group(1), "\n".join(body) + "\n", kind, reason))
        i += 1
    return blocks


def runnable_blocks() -> list[Block]:
    return [b for doc in DOCUMENTS for b in parse_blocks(doc) if b.lang in RUNNERS]


def without_setup(code: str) -> tuple[str, list[str]]:
    """``code`` without its venv and install commands (split on newlines and ``&&``), and what
    was left out."""
    kept, dropped = [], []
    for line in code.splitlines():
        for command in (c.strip() for c in line.split(" && ")):
            if command:
                (dropped if SETUP.match(command) else kept).append(command)
    return "\n".join(kept) + "\n", dropped


def console_commands(code: str) -> str:
    """The commands of a ``console`` block: its ``$ `` lines (the rest is output)."""
    return "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ ")) + "\n"


def clone_like(folder: Path) -> Path:
    """A folder laid out like the repository's root: ``examples/`` copied, the rest linked."""
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in NOT_IN_A_CLONE or entry.name.endswith(".egg-info"):
            continue
        if entry.name == "examples":
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(entry, folder / entry.name, ignore=ignore)
        else:
            (folder / entry.name).symlink_to(entry)
    return folder


def block_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):  # no window may open
        env.pop(name, None)
    return env


def run_block(block: Block, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = block.code
    if block.mark == "setup":
        code, dropped = without_setup(code)
        assert dropped and code.strip(), f"{block.name}: a setup block needs setup and a rest"
    if RUNNERS[block.lang] == "python":
        argv, stdin = [sys.executable, "-"], code
    else:
        script = console_commands(code) if block.lang == "console" else code
        argv, stdin = ["bash", "-e", "-o", "pipefail", "-c", script], None
    return subprocess.run(
        argv,
        input=stdin,
        cwd=cwd,
        env=block_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda b: b.name)
def test_code_block_runs(block: Block, tmp_path: Path) -> None:
    if block.mark == "skip":
        pytest.skip(f"{block.name}: {block.reason}")
    # given a folder like a fresh clone, with no ../shared beside it
    cwd = clone_like(tmp_path / "clone")
    assert not (cwd.parent / "shared").exists()
    # when
    done = run_block(block, cwd)
    # then
    assert done.returncode == 0, f"{block.name} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def test_every_mark_sits_on_a_runnable_block_and_gives_a_reason() -> None:
    for doc in DOCUMENTS:
        lines = doc.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines[:-1], start=1):
            mark, fence = MARK.match(line.strip()), FENCE.match(lines[number])
            if mark is None or (mark.group(1) not in MARKS and fence is None):
                continue  # not a mark, and no typo of one (it would sit on a block)
            where = f"{doc.name}:{number}"
            assert mark.group(1) in MARKS, f"{where}: unknown mark {mark.group(1)!r}"
            assert fence is not None and fence.group(1) in RUNNERS, f"{where}: no code block after"
            assert len(mark.group(2)) >= 10, f"{where}: say why"


def test_readme_is_short_and_starts_with_the_sample_clip() -> None:
    readme = ROOT / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= README_MAX_LINES
    first = runnable_blocks()[0]
    assert first.doc == readme and first.mark == "setup"
    rest, _ = without_setup(first.code)
    assert "examples/data/single_face.mp4" in rest and (ROOT / "examples/data").is_dir()
    for block in parse_blocks(readme):
        assert "../shared" not in block.code, f"{block.name} needs ../shared"


@pytest.mark.parametrize(
    ("code", "kept", "dropped"),
    [
        (
            "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && fer-live -V\n",
            "fer-live -V\n",
            ["python3 -m venv .venv", ". .venv/bin/activate", "pip install -e ."],
        ),
        (
            "pip install x\npython -m pip install y\nls\n",
            "ls\n",
            ["pip install x", "python -m pip install y"],
        ),
        ("fer-live info  # no pip install here\n", "fer-live info  # no pip install here\n", []),
    ],
)
def test_setup_commands_are_left_out(code: str, kept: str, dropped: list[str]) -> None:
    assert without_setup(code) == (kept, dropped)


def test_blocks_and_marks_are_parsed(tmp_path: Path) -> None:
    doc = tmp_path / "page.md"
    doc.write_text(
        "text\n<!-- skip: needs a camera -->\n```bash\nfer-live -c 0\n```\n"
        '```python\nprint("x")\n```\n```json\n{}\n```\n'
    )
    blocks = parse_blocks(doc)
    assert [(b.line, b.lang, b.mark, b.reason) for b in blocks] == [
        (3, "bash", "skip", "needs a camera"),
        (6, "python", None, ""),
        (9, "json", None, ""),
    ]
    assert blocks[1].code == 'print("x")\n'
    doc.write_text("```bash\nls\n")
    with pytest.raises(ValueError, match="not closed"):
        parse_blocks(doc)
    assert console_commands("$ fer-live -V\nfer-live 0.1.0\n$ ls\n") == "fer-live -V\nls\n"
