"""Fixtures the integration tests of networks share."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.libvirt import reachable_dir
from tests.support.netns import Namespaces, made_namespaces


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    yield from made_namespaces()


@pytest.fixture
def networks_dir() -> Iterator[Path]:
    directory = reachable_dir("occi-networks-")  # dnsmasq reads its hosts file as nobody
    yield directory
    shutil.rmtree(directory, ignore_errors=True)
