"""Fixtures the integration tests share: namespaces and network directories, and
a data directory with the tiny guest's images for tests of real guests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.libvirt import link_images, reachable_dir, tiny_images
from tests.support.netns import Namespaces, made_namespaces


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    yield from made_namespaces()


@pytest.fixture
def networks_dir() -> Iterator[Path]:
    directory = reachable_dir("occi-networks-")  # dnsmasq reads its hosts file as nobody
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_image_dir() -> Path:
    return tiny_images()


@pytest.fixture
def data_dir(tiny_image_dir: Path) -> Iterator[Path]:
    directory = reachable_dir("occi-it-")
    link_images(directory)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)
