"""Where a guest's files are on its host: its boot disk (a qcow2 overlay on
its image, or a whole disk copied in by a move), its NoCloud seed and its
serial console log, and the image files it boots from.

A host of this machine (a libvirt URI naming no other machine: qemu:///system,
a socket) keeps them in `<instances>/<key>/`, on the catalogue's own image
files (LocalFiles). A host elsewhere shares no storage with the frontend
(PoolFiles): it keeps them in two libvirt directory pools at paths the server
chose, and the frontend sends what they need through libvirt's storage API,
over the connection it already has (SSH for an added host):
- the guests' pool, at the instances directory's path: `<key>.qcow2`,
  `<key>.seed.iso`, `<key>.console.log`;
- the image cache, `<instances>/images`: each catalogue file a guest there
  boots from, uploaded once as `<digest>-<file name>` (the digest of its path,
  size and modification time: a replaced image is sent again), and removed
  when no guest there uses it any more.
A cached file is complete when its size is the catalogue file's (an
interrupted upload is sent again); its bytes crossed SSH, which checks them.
Changes to a host's image cache hold a lock on the frontend (per host), so a
guest's image cannot be collected between its upload and the guest's
definition."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

import libvirt

from occi_server.backends.libvirt.domain import files_of, parse
from occi_server.backends.libvirt.hosts import Host, message
from occi_server.errors import BackendFailure, BackendUnavailable
from occi_server.images.diskfile import qemu_img

log = logging.getLogger("occi_server.libvirt")
CACHE = "images"  # the image cache's directory, under the instances directory
OWNER = ".owner"


@dataclass(frozen=True)
class GuestPaths:
    """A guest's files as its host sees them."""

    disk: Path
    seed: Path
    console: Path
    kernel: Path | None = None
    initrd: Path | None = None

    def own(self) -> list[Path]:
        """The files that are the guest's alone."""
        return [self.disk, self.seed, self.console]


@dataclass(frozen=True)
class Carried:
    """What a guest takes with it when it moves to another host, but its disk."""

    seed: bytes
    log: bytes


@dataclass(frozen=True)
class BootImage:
    """What a guest boots from, as files of the frontend's catalogue."""

    disk: Path
    disk_format: str
    kernel: Path | None = None
    initrd: Path | None = None


class GuestFiles(ABC):
    """A host's guest files, made and removed by the server."""

    local: bool  # on this machine's file systems

    @abstractmethod
    def paths(self, key: str) -> GuestPaths: ...

    @abstractmethod
    def make(self, key: str, image: BootImage, size_bytes: int, seed: bytes) -> GuestPaths:
        """A boot disk on `image` of at least `size_bytes`, and the seed."""

    @abstractmethod
    def receive(self, key: str, capacity: int, carried: Carried,
                boot: dict[str, Path]) -> GuestPaths:
        """An empty boot disk of `capacity` bytes for a guest moving here with
        its disk copied, its seed and log, and its direct-boot files (frontend
        files)."""

    @abstractmethod
    def carried(self, key: str) -> Carried:
        """What a guest takes with it when it moves, but its disk."""

    @abstractmethod
    def log(self, key: str, max_bytes: int | None = None) -> bytes:
        """The guest's console log, or its last `max_bytes` (empty when it has
        none)."""

    @abstractmethod
    def remove(self, key: str) -> None:
        """The guest's files gone, and the images no guest here uses any more."""

    @abstractmethod
    def frontend_file(self, path: Path) -> Path:
        """The catalogue file behind a host's image file."""

    @abstractmethod
    def disk_copy(self, key: str, target: Path) -> None:
        """The guest's boot disk, flattened, as a qcow2 file of the frontend."""

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """While held, no image of this host is collected."""
        yield

    def discard(self, key: str) -> None:
        """`remove`, best effort: a guest gone or moved keeps no files, but a
        host that does not answer now must not fail what else was done."""
        try:
            self.remove(key)
        except (BackendFailure, BackendUnavailable) as exc:
            log.warning("the files of guest %s stay where they are: %s", key, exc)


class LocalFiles(GuestFiles):
    local = True

    def __init__(self, instances: Path) -> None:
        self.instances = instances

    def paths(self, key: str) -> GuestPaths:
        directory = self.instances / key
        return GuestPaths(directory / "disk.qcow2", directory / "seed.iso",
                          directory / "console.log")

    def _directory(self, key: str) -> Path:
        directory = self.instances / key
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        return directory

    def make(self, key: str, image: BootImage, size_bytes: int, seed: bytes) -> GuestPaths:
        self._directory(key)
        paths = self.paths(key)
        qemu_img("create", "-q", "-f", "qcow2", "-F", image.disk_format, "-b", str(image.disk),
                 str(paths.disk), str(size_bytes),
                 doing=f"creating the disk on {image.disk.name}")
        paths.seed.write_bytes(seed)
        return GuestPaths(paths.disk, paths.seed, paths.console, image.kernel, image.initrd)

    def receive(self, key: str, capacity: int, carried: Carried,
                boot: dict[str, Path]) -> GuestPaths:
        self._directory(key)
        paths = self.paths(key)
        qemu_img("create", "-q", "-f", "qcow2", str(paths.disk), str(capacity),
                 doing="making the disk a moving guest's is copied to")
        paths.seed.write_bytes(carried.seed)
        paths.console.write_bytes(carried.log)
        return GuestPaths(paths.disk, paths.seed, paths.console, boot.get("kernel"),
                          boot.get("initrd"))

    def carried(self, key: str) -> Carried:
        return Carried(self.paths(key).seed.read_bytes(), self.log(key))

    def log(self, key: str, max_bytes: int | None = None) -> bytes:
        log_file = self.paths(key).console
        if not log_file.exists():
            return b""
        with log_file.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - (max_bytes or handle.tell())))
            return handle.read()

    def remove(self, key: str) -> None:
        shutil.rmtree(self.instances / key, ignore_errors=True)

    def frontend_file(self, path: Path) -> Path:
        return path

    def disk_copy(self, key: str, target: Path) -> None:
        qemu_img("convert", "-U", "-O", "qcow2", str(self.paths(key).disk), str(target),
                 doing="saving the disk as an image")


class PoolFiles(GuestFiles):
    local = False

    def __init__(self, host: Host, instances: Path, catalogue: Path, locks: Path) -> None:
        self.host = host
        self.instances = instances
        self.cache = instances / CACHE
        self.catalogue = catalogue
        digest = hashlib.sha256(host.uri.encode()).hexdigest()[:16]
        self.lock_file = locks / f"{digest}.lock"
        # A file of the host's in its guests' pool: another host's there
        # means the directory is shared, and nothing is collected.
        self.owner = f"host-{digest}{OWNER}"
        self._ready: dict[Path, libvirt.virStoragePool] = {}  # pools looked up or made

    def paths(self, key: str) -> GuestPaths:
        return GuestPaths(self.instances / f"{key}.qcow2", self.instances / f"{key}.seed.iso",
                          self.instances / f"{key}.console.log")

    # ------------------------------------------------------------ pools
    def _pool(self, path: Path) -> libvirt.virStoragePool:
        """The host's directory pool at `path` (asked for once per operation)."""
        pool = self._ready.get(path)
        if pool is None:
            pool = self._ready[path] = self._start(path)
        return pool

    def _start(self, path: Path) -> libvirt.virStoragePool:
        """The host's directory pool at `path`, defined, built and started if
        it was not (named from a digest of the path)."""
        connection = self.host.connection()
        try:
            pool = connection.storagePoolLookupByTargetPath(str(path))
        except libvirt.libvirtError:
            name = "occi-" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
            pool = connection.storagePoolDefineXML(
                f"<pool type='dir'><name>{name}</name><target><path>{escape(str(path))}"
                "</path><permissions><mode>0755</mode></permissions></target></pool>", 0)
            pool.setAutostart(1)
        if not pool.isActive():
            pool.build(0)  # its directory again, if it went (its parents too)
            pool.create(0)
        return pool

    def _guests(self) -> libvirt.virStoragePool:
        first = self.instances not in self._ready
        pool = self._pool(self.instances)
        if first and self._volume(pool, self.owner) is None:
            self._upload(pool, self.owner, io.BytesIO(b""), 0)
        return pool

    def _images(self) -> libvirt.virStoragePool:
        self._guests()  # the cache's directory is inside the guests' one
        return self._pool(self.cache)

    @contextlib.contextmanager
    def _calling(self, doing: str) -> Iterator[None]:
        try:
            yield
        except libvirt.libvirtError as exc:
            raise BackendFailure(f"{doing} on {self.host.name} failed: {message(exc)}") \
                from None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------ volumes
    def _volume(self, pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError:
            return None

    def _upload(self, pool: libvirt.virStoragePool, name: str, source: BinaryIO,
                size: int, mode: str = "0644") -> Path:
        """A new volume `name` holding `size` bytes read from `source`."""
        old = self._volume(pool, name)
        if old is not None:
            old.delete(0)
        volume = pool.createXML(
            f"<volume><name>{escape(name)}</name><capacity unit='bytes'>0</capacity><target>"
            f"<format type='raw'/><permissions><mode>{mode}</mode></permissions></target>"
            "</volume>", 0)
        stream = self.host.connection().newStream(0)
        try:
            volume.upload(stream, 0, size, 0)
            stream.sendAll(lambda _stream, wanted, handle: handle.read(wanted), source)
            stream.finish()
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            with contextlib.suppress(libvirt.libvirtError):
                volume.delete(0)
            raise
        return Path(volume.path())

    def _download(self, volume: libvirt.virStorageVol, into: BinaryIO, offset: int = 0,
                  length: int = 0) -> None:
        stream = self.host.connection().newStream(0)
        volume.download(stream, offset, length, 0)
        stream.recvAll(lambda _stream, data, sink: sink.write(data), into)
        stream.finish()

    def _read(self, volume: libvirt.virStorageVol, offset: int = 0, length: int = 0) -> bytes:
        received = io.BytesIO()
        self._download(volume, received, offset, length)
        return received.getvalue()

    def _cached(self, local: Path) -> Path:
        """Where the host has the catalogue file `local`, uploaded if it had
        not (or not all of it)."""
        name = cache_name(local)
        pool = self._images()
        size = local.stat().st_size
        volume = self._volume(pool, name)
        if volume is not None and volume.infoFlags(
                libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2] == size:
            return Path(volume.path())
        with local.open("rb") as handle:
            return self._upload(pool, name, handle, size)

    def _disk(self, key: str, capacity: int, backing: tuple[Path, str] | None = None) -> Path:
        """The guest's qcow2 boot disk: on `backing` (a file here and its
        format), or empty."""
        backing_store = "" if backing is None else (
            f"<backingStore><path>{escape(str(backing[0]))}</path>"
            f"<format type='{escape(backing[1])}'/></backingStore>")
        volume = self._guests().createXML(
            f"<volume><name>{key}.qcow2</name><capacity unit='bytes'>{capacity}</capacity>"
            f"<target><format type='qcow2'/></target>{backing_store}</volume>", 0)
        return Path(volume.path())

    def _seed_and_log(self, key: str, carried: Carried) -> None:
        pool = self._guests()
        paths = self.paths(key)
        self._upload(pool, paths.seed.name, io.BytesIO(carried.seed), len(carried.seed))
        # Made now (empty for a new guest), so that it is a volume the frontend
        # reads without a refresh.
        self._upload(pool, paths.console.name, io.BytesIO(carried.log), len(carried.log),
                     mode="0600")

    def make(self, key: str, image: BootImage, size_bytes: int, seed: bytes) -> GuestPaths:
        with self._calling(f"sending {image.disk.name} and the guest's files"):
            disk = self._disk(key, size_bytes, (self._cached(image.disk), image.disk_format))
            self._seed_and_log(key, Carried(seed, b""))
            paths = self.paths(key)
            return GuestPaths(disk, paths.seed, paths.console,
                              self._cached(image.kernel) if image.kernel else None,
                              self._cached(image.initrd) if image.initrd else None)

    def receive(self, key: str, capacity: int, carried: Carried,
                boot: dict[str, Path]) -> GuestPaths:
        with self._calling("preparing the moving guest's files"):
            disk = self._disk(key, capacity)
            self._seed_and_log(key, carried)
            paths = self.paths(key)
            return GuestPaths(disk, paths.seed, paths.console,
                              *(self._cached(boot[name]) if name in boot else None
                                for name in ("kernel", "initrd")))

    def carried(self, key: str) -> Carried:
        with self._calling("reading the guest's seed"):
            volume = self._guests().storageVolLookupByName(self.paths(key).seed.name)
            return Carried(self._read(volume), self.log(key))

    def log(self, key: str, max_bytes: int | None = None) -> bytes:
        with self._calling("reading the console log"):
            volume = self._volume(self._guests(), self.paths(key).console.name)
            if volume is None:
                return b""
            size = volume.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2]
            if size == 0:
                return b""
            offset = max(0, size - (max_bytes or size))
            return self._read(volume, offset, size - offset)

    def remove(self, key: str) -> None:
        with self.held(), self._calling("removing the guest's files"):
            guests = self._guests()
            for path in self.paths(key).own():
                volume = self._volume(guests, path.name)
                if volume is not None:
                    volume.delete(0)
            self._collect(guests)

    def _collect(self, guests: libvirt.virStoragePool) -> None:
        """Remove what no guest here uses: files of guests gone (when a host
        did not answer as they went, say) and cached images. Guests' files are
        made, and received, under the lock, up to their guest's definition."""
        used: set[str] = set()
        for domain in self.host.connection().listAllDomains(0):
            used.update(files_of(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
            if domain.isActive():
                used.update(files_of(domain.XMLDesc(0)))
        guests.refresh(0)
        volumes = guests.listAllVolumes(0)
        owners = {volume.name() for volume in volumes if volume.name().endswith(OWNER)}
        if owners - {self.owner}:
            log.warning("%s is shared with other hosts (%s): nothing of it is collected",
                        self.instances, ", ".join(sorted(owners - {self.owner})))
            return
        for volume in volumes:
            if volume.info()[0] != libvirt.VIR_STORAGE_VOL_FILE or volume.name() == self.owner:
                continue  # the image cache's directory, the host's own mark
            if volume.path() not in used:
                volume.delete(0)
                continue
            backing = parse(volume.XMLDesc(0)).findtext("backingStore/path")
            if backing:
                used.add(backing)
        images = self._images()
        images.refresh(0)
        for volume in images.listAllVolumes(0):
            if volume.path() not in used:
                volume.delete(0)

    def frontend_file(self, path: Path) -> Path:
        """The catalogue file cached as `path`: its name after the digest, if
        the digest is still that file's."""
        local = self.catalogue / path.name.partition("-")[2]
        if path.parent != self.cache or not local.exists() or cache_name(local) != path.name:
            raise BackendFailure(f"{path.name} on {self.host.name} is no longer an image of "
                                 "the catalogue")
        return local

    def disk_copy(self, key: str, target: Path) -> None:
        """The overlay is fetched, set on the catalogue's copy of its image,
        and flattened here."""
        with self._calling("fetching the guest's disk"):
            volume = self._guests().storageVolLookupByName(self.paths(key).disk.name)
            described = parse(volume.XMLDesc(0))
            backing = described.findtext("backingStore/path")
            disk_format = described.find("backingStore/format")
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".fetched-") as fetched:
                self._download(volume, fetched)
                fetched.flush()
                self._flatten(Path(fetched.name), backing,
                              "raw" if disk_format is None else str(disk_format.get("type")),
                              target)

    def _flatten(self, overlay: Path, backing: str | None, disk_format: str,
                 target: Path) -> None:
        if backing:
            qemu_img("rebase", "-u", "-f", "qcow2", "-F", disk_format, "-b",
                     str(self.frontend_file(Path(backing))), str(overlay),
                     doing="setting the fetched disk on its image")
        qemu_img("convert", "-O", "qcow2", str(overlay), str(target),
                 doing="saving the disk as an image")


def cache_name(local: Path) -> str:
    """The name a catalogue file has in hosts' image caches."""
    status = local.stat()
    digest = hashlib.sha256(f"{local.resolve()} {status.st_size} {status.st_mtime_ns}"
                            .encode()).hexdigest()[:16]
    return f"{digest}-{local.name}"


def files_on(host: Host, instances: Path, catalogue: Path) -> GuestFiles:
    """The guest files of `host`: on this machine, or in the host's pools."""
    if host.local:
        return LocalFiles(instances)
    return PoolFiles(host, instances, catalogue, instances / ".locks")

