"""What the image builders share: one error, and commands run as argument lists."""

from __future__ import annotations

import subprocess
from pathlib import Path


class BuildError(Exception):
    pass


def run(*args: str, cwd: Path | None = None, data: bytes | None = None) -> bytes:
    try:
        result = subprocess.run(list(args), cwd=cwd, input=data, capture_output=True,
                                check=True, timeout=600)
    except FileNotFoundError as exc:
        raise BuildError(f"{args[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"{' '.join(args)} failed: {exc.stderr.decode(errors='replace')}") \
            from exc
    return result.stdout
