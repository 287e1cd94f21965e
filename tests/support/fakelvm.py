"""A stand-in for the lvm2 commands that keeps a volume group's state: logical
volumes need device-mapper, which these machines lack (tests/integration/
test_lvm.py runs the real thing where it works)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from occi_server.errors import BackendFailure

GIB = 1024 ** 3


class FakeLvm:
    def __init__(self, vg_size: int = 10 * GIB) -> None:
        self.vg_size = vg_size
        self.lvs: dict[str, int] = {"swap": GIB}  # not ours: must be left alone
        self.tags: dict[str, list[str]] = {}
        self.commands: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> str:
        args = list(args)
        self.commands.append(args)
        command = args[0]
        if command == "lvs" and "lv_tags" in args:
            tags = self.tags.get(args[-1].split("/")[1], [])
            return f"  {','.join(tags)}\n"
        if command == "lvs":
            return "".join(f"  {name},{size}\n" for name, size in self.lvs.items())
        if command == "vgs":
            return f"  {self.vg_size}\n"
        if command == "lvcreate":
            name, size = args[args.index("--name") + 1], int(args[args.index("--size") + 1][:-1])
            if name in self.lvs:
                raise BackendFailure(f'lvcreate failed: Logical Volume "{name}" already exists')
            self.lvs[name] = size
        elif command == "lvextend":
            self.lvs[args[-1].split("/")[1]] = int(args[args.index("--size") + 1][:-1])
        elif command == "lvremove":
            del self.lvs[args[-1].split("/")[1]]
        elif command == "lvrename":
            self.lvs[args[3]] = self.lvs.pop(args[2])
            self.tags[args[3]] = self.tags.pop(args[2], [])
        elif command == "lvchange":
            assert all(re.fullmatch(r"[A-Za-z0-9_+.\-/=!:&#]{1,1024}", tag)  # lvm's tag rules
                       for flag, tag in zip(args[1:-1:2], args[2:-1:2], strict=True))
            self.tags.setdefault(args[-1].split("/")[1], []).extend(args[2:-1:2])
        return ""
