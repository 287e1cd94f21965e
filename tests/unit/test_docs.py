"""Every `occi` and `occi-server` command the README and docs/ show in their
sh blocks names subcommands and options the installed commands accept:
documentation that drifts from the command line fails here. (The README's curl
walkthrough runs as written in tests/integration/test_readme.py; the
scientist's day in tests/integration/test_guest_day.py.)"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROGRAMS = {"occi": "occi", "$occi": "occi", "occi-server": "occi-server"}
# occi's options before its command that take a value.
OCCI_VALUED = {"-e", "--endpoint", "-s", "--site", "--sites-file", "-a", "--auth", "-u",
               "--user", "-p", "--password", "-t", "--token", "--certificate", "--key", "--ca",
               "--tenant", "-m", "--media-type", "-o", "--output"}


def documented() -> list[tuple[str, str, list[str]]]:
    """(where, program, words) of each documented command; `a | b` synopses are two."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.split(r"\s#", line, maxsplit=1)[0].replace("[", " ").replace("]", " ")
                program = None
                for part in line.split(" | "):
                    try:
                        words = shlex.split(part)
                    except ValueError:
                        words = part.split()
                    if words and words[0] in PROGRAMS:
                        program, words = PROGRAMS[words[0]], words[1:]
                    elif program is None:
                        break  # not one of our commands
                    found.append((f"{doc.name}: {line.strip()[:60]}", program, words))
    return found


@functools.cache
def help_of(program: str, path: tuple[str, ...]) -> str | None:
    result = subprocess.run([str(BIN / program), *path, "--help"], capture_output=True,
                            text=True, timeout=30)
    return result.stdout if result.returncode == 0 else None


def test_the_docs_show_commands() -> None:
    programs = {program for _, program, _ in documented()}
    assert programs == {"occi", "occi-server"}


@pytest.mark.parametrize(("where", "program", "words"), documented(),
                         ids=[where for where, _, _ in documented()])
def test_each_documented_command_is_accepted(where: str, program: str, words: list[str]) -> None:
    top = help_of(program, ())
    assert top is not None
    rest = list(words)
    if program == "occi":  # its own options come first
        while rest and rest[0].startswith("-"):
            option = rest.pop(0)
            assert option.split("=")[0] in top, f"occi has no option {option}"
            if option in OCCI_VALUED and rest:
                rest.pop(0)
    path: tuple[str, ...] = ()
    while rest and re.fullmatch(r"[a-z][a-z0-9-]*", rest[0]) \
            and help_of(program, (*path, rest[0])) is not None \
            and re.search(rf"\b{re.escape(rest[0])}\b", help_of(program, path) or ""):
        path = (*path, rest.pop(0))
    assert path, f"{program} has no command {rest[:1]}"
    text = help_of(program, path) or ""
    for word in rest:
        if word.startswith("-") and word not in ("-", "--"):
            option = word.split("=")[0]
            assert re.search(rf"(^|[\s,\[]){re.escape(option)}\b", text), \
                f"{program} {' '.join(path)} has no option {option}"
