"""The README's curl examples, run exactly as written against the cloud the
run command starts: documentation that drifts from behaviour fails here."""

from __future__ import annotations

import re
import shlex
import shutil
import socket
from pathlib import Path

import pytest

from tests.support import nshost
from tests.support.libvirt import link_images, reachable_dir
from tests.support.libvirt import unavailable_reason as libvirt_unavailable

README = Path(__file__).resolve().parents[2] / "README.md"


# `NAME=$(curl …)`: the command's output is kept, and `$NAME` stands for it after.
ASSIGNMENT = re.compile(r"(\w+)=\$\((.*)\)\s*", re.S)


def curl_commands() -> list[tuple[str | None, list[str]]]:
    """Each command of the curl section, with the variable its output goes to."""
    text = README.read_text()
    section = text.split("## Using it with curl", 1)[1].split("\n## ", 1)[0]
    commands: list[tuple[str | None, list[str]]] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        buffer = ""
        for line in block.splitlines(keepends=True):
            buffer += line
            if buffer.rstrip("\n").endswith("\\"):
                continue
            assigned = ASSIGNMENT.fullmatch(buffer)
            try:  # as sh joins continued lines
                words = shlex.split((assigned.group(2) if assigned else buffer)
                                    .replace("\\\n", " "))
            except ValueError:  # a quoted body continues on the next line
                continue
            if words:
                commands.append((assigned.group(1) if assigned else None, words))
            buffer = ""
    return commands


def test_the_readme_has_examples_for_every_verb() -> None:
    methods = {words[words.index("-X") + 1] if "-X" in words else
               ("HEAD" if "-I" in words else "GET") for _, words in curl_commands()}
    assert methods == {"GET", "HEAD", "POST", "PUT", "DELETE"}


@pytest.mark.skipif((nshost.unavailable_reason() or libvirt_unavailable()) is not None,
                    reason=nshost.unavailable_reason() or libvirt_unavailable() or "")
def test_readme_examples_work_in_order_right_after_the_run_command() -> None:
    """Against the service as scripts/run.sh starts it (libvirt guests of the
    tiny image, a file pool, bridges with DHCP), on a host of the test's own."""
    host, data = nshost.NamespaceHost.start(), reachable_dir("occi-readme-")
    images = link_images(data)
    site = f"http://{socket.gethostname()}/occi/"
    try:
        with host.serve(data) as url:
            variables = {"OCCI": url, "SITE": site}
            for assigned, words in curl_commands():
                assert words[0] == "curl"
                argv = ["curl", "--fail-with-body", "-sS", *(
                    re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m[1], m[0]), word)
                    for word in words[1:])]
                result = host.exec(*argv, check=False, timeout=300)
                assert result.returncode == 0, (shlex.join(words), result.stdout, result.stderr)
                if assigned:
                    variables[assigned] = result.stdout.strip()
            # It all happened for real: the worker still runs (vm1 was deleted),
            # vm1's save is in the catalogue, and the volumes went with `DELETE /storage/`.
            running = nshost.run("virsh", "-c", host.libvirt_uri, "list", "--name").stdout
            assert len(running.split()) == 1, running
            assert len(list(images.glob("saved-*.json"))) == 1
            assert not list((data / "volumes").glob("vol-*"))
    finally:
        host.stop()
        shutil.rmtree(data, ignore_errors=True)
