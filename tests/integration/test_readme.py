"""The README's curl examples, run exactly as written against a fresh server:
documentation that drifts from behaviour fails here."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_serve import Server

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_commands() -> list[list[str]]:
    text = README.read_text()
    section = text.split("## Using it with curl", 1)[1].split("\n## ", 1)[0]
    commands: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        buffer = ""
        for line in block.splitlines(keepends=True):
            buffer += line
            if buffer.rstrip("\n").endswith("\\"):
                continue
            try:
                words = shlex.split(buffer.replace("\\\n", " "))  # as sh joins them
            except ValueError:  # a quoted body continues on the next line
                continue
            if words:
                commands.append(words)
            buffer = ""
    return commands


def test_the_readme_has_examples_for_every_verb() -> None:
    methods = {words[words.index("-X") + 1] if "-X" in words else
               ("HEAD" if "-I" in words else "GET") for words in curl_commands()}
    assert methods == {"GET", "HEAD", "POST", "PUT", "DELETE"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_examples_work_in_order(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.start(workers=1)
    try:
        for words in curl_commands():
            assert words[0] == "curl"
            argv = ["curl", "--fail-with-body", "-sS",
                    *(w.replace("$OCCI", server.url) for w in words[1:])]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, (shlex.join(words), result.stdout, result.stderr)
    finally:
        server.stop()
