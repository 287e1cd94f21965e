"""occi-server: run the service and the operator's tools."""

from __future__ import annotations

import argparse
import gc
import getpass
import json
import logging
import shlex
import sys
from typing import Any

from occi_server import SERVER_HEADER, __version__
from occi_server.config import ConfigError, load_config

SWITCH_SECONDS = 0.0005  # how long a worker's thread may keep the interpreter from another

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="occi-server", description="OCCI 1.2 IaaS service")
    parser.add_argument("--version", action="version", version=f"occi-server {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the OCCI service")
    serve.add_argument("--listen", help="HOST:PORT to listen on (default 127.0.0.1:8080)")
    serve.add_argument("--data-dir", help="directory for the database and state (default ./data)")
    serve.add_argument("--config", help="TOML configuration file")
    serve.add_argument("--workers", type=int, help="worker processes (default: from CPUs)")
    serve.add_argument("--debug", action="store_true",
                       help="use Flask's development server (single process, reloads nothing)")

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--data-dir")
    migrate.add_argument("--config")

    commands.add_parser("hash-password",
                        help="print a password hash for the [users] table of the config file")

    quarantine = commands.add_parser("quarantine", help="list deleted volumes that can still "
                                                        "be restored (filepool or lvm storage)")
    restore = commands.add_parser("restore-volume", help="bring a deleted volume back from "
                                                         "quarantine as the storage it was")
    restore.add_argument("volume_id", help="the key of the deleted volume, as `quarantine` "
                         "lists it (it comes back as /storage/<key>)")
    for command in (quarantine, restore):
        command.add_argument("--data-dir")
        command.add_argument("--config")

    sign = commands.add_parser("sign-metadata", help="endorse an image: print its marketplace "
                                                     "entry signed with your key")
    sign.add_argument("image", help="the image file (its checksums and size are computed)")
    sign.add_argument("--key", required=True, help="your private key (PEM)")
    sign.add_argument("--cert", required=True, help="your certificate (PEM)")
    sign.add_argument("--chain", action="append", default=[],
                      help="an intermediate CA certificate (PEM), repeatable")
    sign.add_argument("--title", required=True)
    sign.add_argument("--description", default="")
    sign.add_argument("--kind", choices=("machine", "disk"), default="machine")
    sign.add_argument("--os", default="")
    sign.add_argument("--os-version", default="")
    sign.add_argument("--architecture", default="x64")
    sign.add_argument("--location", default="", help="where the image can be fetched")
    sign.add_argument("--endorser-name", default="")
    sign.add_argument("--endorser-email", default="")
    sign.add_argument("--valid-days", type=int, default=365)
    sign.add_argument("--output", "-o", help="write here instead of standard output")

    move = commands.add_parser("copy-store", help="copy the whole store into another "
                                                  "(empty) database, e.g. from SQLite to "
                                                  "PostgreSQL")
    move.add_argument("target_url", help="e.g. postgresql+psycopg://occi:secret@db/occi")
    move.add_argument("--data-dir")
    move.add_argument("--config")

    sync = commands.add_parser("sync-image-lists",
                               help="fetch the subscribed image lists (image_lists), verify "
                                    "them and update the image catalogue")
    sync.add_argument("--data-dir")
    sync.add_argument("--config")

    user = commands.add_parser("user", help="manage the users of HTTP basic and X.509 "
                                             "(kept in the store)")
    user_actions = user.add_subparsers(dest="action", required=True)
    add_user = user_actions.add_parser("add", help="add a user, or change one (the password "
                                                   "is read from the terminal or stdin)")
    add_user.add_argument("name")
    add_user.add_argument("--tenant", action="append", required=True,
                          help="a tenant the user acts for (repeatable; the first is the "
                               "default)")
    add_user.add_argument("--admin", action="store_true", help="an operator of the site")
    add_user.add_argument("--dn", help="the subject DN of the user's certificate (X.509)")
    add_user.add_argument("--no-password", action="store_true",
                          help="no password (the user authenticates with a certificate)")
    list_users = user_actions.add_parser("list", help="list the users")
    remove_user = user_actions.add_parser("remove", help="remove a user")
    remove_user.add_argument("name")

    records = commands.add_parser("apel-records", help="write the APEL cloud usage records "
                                                       "(v0.4) of a period")
    records.add_argument("--start", required=True, help="period start (ISO 8601, UTC if no "
                                                       "offset), e.g. 2026-11-01")
    records.add_argument("--end", help="period end (default: now)")
    records.add_argument("--spool", help="the APEL SSM sender's outgoing directory (a "
                                         "dirq queue); default: standard output")

    image = commands.add_parser("image", help="add images to the catalogue (os_tpl mixins)")
    image_actions = image.add_subparsers(dest="image_command", required=True)
    build = image_actions.add_parser("build", help="build an image from the apt repositories "
                                                   "(cached: nothing is redone when unchanged)")
    build.add_argument("name", choices=("debian-12", "tiny"),
                       help="debian-12: Debian with cloud-init and sshd (log in as 'debian'); "
                            "tiny: the busybox test guest")
    build.add_argument("--mirror", default="http://deb.debian.org/debian",
                       help="the Debian archive debootstrap fetches from")
    add_image = image_actions.add_parser("import", help="add a qcow2 or raw disk image")
    add_image.add_argument("file", help="the disk image (qcow2 or raw, no backing file)")
    add_image.add_argument("name", help="its os_tpl term (lower-case letters, digits, . _ -)")
    add_image.add_argument("--title", default="")
    add_image.add_argument("--sha256", default="", help="refuse the file unless it has this "
                                                        "checksum")
    add_image.add_argument("--kernel", help="a kernel for direct boot (else the disk boots)")
    add_image.add_argument("--initrd")
    add_image.add_argument("--cmdline", default="")
    add_image.add_argument("--os", default="linux")
    add_image.add_argument("--architecture", default="x64")
    for command in (build, add_image):
        command.add_argument("--data-dir")
        command.add_argument("--config")

    glue = commands.add_parser("glue-info", help="print the GLUE 2.1 description of this "
                                                 "endpoint (JSON, as cloud-info-provider)")
    host = commands.add_parser("host", help="manage the site's hypervisor hosts")
    host_actions = host.add_subparsers(dest="host_command", required=True)
    host_key = host_actions.add_parser("key", help="print the site's SSH public key (made on "
                                                   "first use), for the hosts' authorized_keys")
    add_host = host_actions.add_parser("add", help="add a hypervisor host reached over SSH "
                                                   "(or by a libvirt URI)")
    add_host.add_argument("target", help="[user@]host[:port] (user: root), or a libvirt URI")
    add_host.add_argument("--name", help="what the site calls it (default: its address)")
    add_host.add_argument("--host-key", metavar="SHA256:…",
                          help="the fingerprint of its SSH host key, checked on the host "
                               "(else asked on the terminal)")
    add_host.add_argument("--install-key", action="store_true",
                          help="install the site's key with ssh-copy-id (asks for the "
                               "host user's password) if it is not accepted yet")
    list_hosts = host_actions.add_parser("list", help="list the hosts and what each reports")
    drain_host = host_actions.add_parser("drain", help="send no new guest to a host")
    drain_host.add_argument("--migrate", action="store_true",
                            help="and move its guests to other hosts (running ones live)")
    undrain_host = host_actions.add_parser("undrain", help="send new guests to a host again")
    move_host = host_actions.add_parser("move", help="move a compute to another host (live "
                                                     "when it runs), with its disk")
    move_host.add_argument("location", help="the compute's location, e.g. /compute/<id>")
    move_host.add_argument("--to", metavar="HOST", help="the host (default: where placement "
                                                        "puts it)")
    remove_host = host_actions.add_parser("remove", help="forget an added host (it must have "
                                                         "no guest of the site)")
    remove_host.add_argument("--force", action="store_true",
                             help="forget it even though it does not answer")
    for command in (drain_host, undrain_host, remove_host):
        command.add_argument("name")
    for command in (add_user, list_users, remove_user, records, glue, host_key, add_host,
                    list_hosts, drain_host, undrain_host, move_host, remove_host):
        command.add_argument("--data-dir")
        command.add_argument("--config")

    args = parser.parse_args(argv)
    try:
        if args.command == "hash-password":
            return _hash_password()
        if args.command == "sign-metadata":
            return _sign_metadata(args)
        config = load_config(args.config, data_dir=args.data_dir,
                             listen=getattr(args, "listen", None),
                             workers=getattr(args, "workers", None))
        if args.command == "serve" and not args.debug:
            _share_metrics(config)
        from occi_server.http.logs import configure_logging
        configure_logging(config.log_level, config.log_format)
        if args.command == "sync-image-lists":
            return _sync_image_lists(config)
        if args.command in ("quarantine", "restore-volume"):
            return _volumes(config, getattr(args, "volume_id", None))
        if args.command == "image":
            return _image(config, args)
        if args.command == "copy-store":
            return _copy_store(config, args.target_url)
        if args.command == "user":
            return _user(config, args)
        if args.command == "host":
            return _host(config, args)
        if args.command in ("apel-records", "glue-info"):
            return _federation(config, args)
        if args.command == "migrate":
            from occi_server.store import Store
            config.data_path.mkdir(parents=True, exist_ok=True)
            Store(config.effective_database_url).migrate()
            return 0
        return _serve(config, debug=args.debug)
    except ConfigError as exc:
        print(f"occi-server: {exc}", file=sys.stderr)
        return 2


def _share_metrics(config: Any) -> None:
    """Gunicorn workers write their metrics where any of them can add them up;
    set before the metrics are first imported, emptied at each start."""
    import os
    import shutil
    directory = config.data_path / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _sign_metadata(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from occi_server.errors import OCCIError
    from occi_server.marketplace.entries import new_metadata
    from occi_server.marketplace.signing import sign

    try:
        metadata = new_metadata(
            Path(args.image), title=args.title, valid_days=args.valid_days,
            description=args.description, kind=args.kind, os=args.os,
            os_version=args.os_version, architecture=args.architecture,
            location=args.location, endorser_name=args.endorser_name,
            endorser_email=args.endorser_email)
        document = sign(metadata, Path(args.key).read_bytes(),
                        [Path(p).read_bytes() for p in (args.cert, *args.chain)])
    except (OSError, ValueError, OCCIError) as exc:
        print(f"occi-server: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    text = json.dumps(document, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _image(config: Any, args: argparse.Namespace) -> int:
    from pathlib import Path

    from occi_server.images.build import BuildError
    images, cache = config.images_path, config.data_path / "cache"
    try:
        if args.image_command == "import":
            from occi_server.images.importing import import_image
            metadata = import_image(
                images, Path(args.file), args.name, title=args.title, sha256=args.sha256,
                kernel=Path(args.kernel) if args.kernel else None,
                initrd=Path(args.initrd) if args.initrd else None, cmdline=args.cmdline,
                os_name=args.os, architecture=args.architecture)
        elif args.name == "tiny":
            from occi_server.images import tiny
            metadata = tiny.build(images, cache)
        else:
            from occi_server.images import debian
            print("building debian-12 with debootstrap (about 90 s the first time)",
                  file=sys.stderr)
            metadata = debian.build(images, cache, args.mirror)
    except BuildError as exc:
        print(f"occi-server: {exc}", file=sys.stderr)
        return 1
    entry = json.loads(metadata.read_text())
    disk = images / entry["disk"]
    print(f"os_tpl {metadata.stem}: {entry['title']} ({disk})")
    print("endorse it in the marketplace: " + shlex.join([
        "occi-server", "sign-metadata", str(disk), "--key", "KEY.pem", "--cert", "CERT.pem",
        "--title", entry["title"], "--os", entry.get("os", "linux")]))
    return 0


def _copy_store(config: Any, target_url: str) -> int:
    from occi_server.errors import OCCIError
    from occi_server.store import Store
    source, target = Store(config.effective_database_url), Store(target_url)
    try:
        source.migrate()
        copied = source.copy_to(target)
    except OCCIError as exc:
        print(f"occi-server: {exc.message}", file=sys.stderr)
        return 1
    finally:
        source.dispose()
        target.dispose()
    for table, count in copied.items():
        print(f"{table}: {count} rows")
    print(f"copied; now set database_url = \"{target_url.split('@')[-1]}\" (with its "
          "credentials) and restart")
    return 0


def _sync_image_lists(config: Any) -> int:
    from occi_server.marketplace.imagelists import ImageListSync

    report = ImageListSync(config.marketplace_ca_path, config.images_path).sync(
        config.image_lists)
    for label, terms in (("published", report.published), ("kept", report.kept),
                         ("unpublished", report.removed)):
        for term in terms:
            print(f"{label} {term}")
    for reason in report.refused:
        print(f"refused: {reason}", file=sys.stderr)
    return 1 if report.refused else 0


def _hash_password() -> int:
    from werkzeug.security import generate_password_hash
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline()
    print(generate_password_hash(password.rstrip("\n")))
    return 0


def _user(config: Any, args: argparse.Namespace) -> int:
    from werkzeug.security import generate_password_hash

    from occi_server.identity.x509 import canonical_dn
    from occi_server.store import Store

    config.data_path.mkdir(parents=True, exist_ok=True)
    store = Store(config.effective_database_url)
    store.migrate()
    if args.action == "list":
        with store.transaction(write=False) as repo:
            for row in repo.users():
                print("\t".join([row["name"], ",".join(row["tenants"]),
                                 "operator" if row["admin"] else "user",
                                 "password" if row["password_hash"] else "-",
                                 row["subject_dn"] or "-"]))
        return 0
    if args.action == "remove":
        with store.transaction(write=True) as repo:
            if not repo.delete_user(args.name):
                raise ConfigError(f"no user {args.name}")
        return 0
    hashed = None
    if not args.no_password:
        password = getpass.getpass("password: ") if sys.stdin.isatty() \
            else sys.stdin.readline().rstrip("\n")
        if not password:
            raise ConfigError("an empty password is refused (use --no-password for "
                              "certificate-only users)")
        hashed = generate_password_hash(password)
    try:
        dn = canonical_dn(args.dn) if args.dn else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if hashed is None and dn is None:
        raise ConfigError("a user needs a password or a certificate DN (--dn)")
    with store.transaction(write=True) as repo:
        repo.save_user(args.name, tenants=args.tenant, admin=args.admin, password_hash=hashed,
                       subject_dn=dn)
    print(f"user {args.name}: tenants {', '.join(args.tenant)}"
          + (" (operator)" if args.admin else ""))
    return 0


def _host(config: Any, args: argparse.Namespace) -> int:
    from occi_server.backends.libvirt import ssh
    from occi_server.errors import BackendFailure, OCCIError
    from occi_server.service import hosts
    from occi_server.store import Store

    config.data_path.mkdir(parents=True, exist_ok=True)
    if args.host_command == "key":
        print(ssh.public_key(config.data_path))
        return 0
    store = Store(config.effective_database_url)
    store.migrate()
    try:
        if args.host_command == "add":
            view = hosts.add(store, config, args.target, name=args.name,
                             fingerprint=args.host_key, install_key=args.install_key,
                             confirm=_ask if sys.stdin.isatty() else None)
            print(f"host {view.name} added: {_capacity_text(view)}")
        elif args.host_command == "list":
            for view in hosts.listing(store, config):
                state = "draining" if view.draining else "active"
                origin = "configured" if view.configured else "added"
                print("\t".join([view.name, view.target, f"{state} ({origin})",
                                 _capacity_text(view)]))
        elif args.host_command == "drain" and args.migrate:
            for line in hosts.evacuate(store, config, args.name):
                print(line)
        elif args.host_command == "move":
            print(hosts.move(store, config, args.location, args.to))
        elif args.host_command in ("drain", "undrain"):
            hosts.drain(store, config, args.name, args.host_command == "drain")
        else:
            hosts.remove(store, config, args.name, force=args.force)
    except OCCIError as exc:
        raise ConfigError(exc.message) from None
    except BackendFailure as exc:
        raise ConfigError(str(exc)) from None
    return 0


def _ask(question: str) -> bool:
    return input(f"{question} [yes/no] ").strip().lower() in ("y", "yes")


def _capacity_text(view: Any) -> str:
    capacity = view.capacity
    if capacity is None:
        return f"does not answer: {view.problem}"
    disk = "?" if view.free_disk_bytes is None else f"{view.free_disk_bytes / 2**30:.1f} GiB"
    free = "?" if capacity.free_kib is None else capacity.free_kib // 1024
    return (f"{capacity.cores} cores, {capacity.memory_kib // 1024} MiB "
            f"({free} MiB free), {disk} disk free; "
            f"{capacity.guests} guests of the site running "
            f"({capacity.vcpus} vCPUs, {capacity.promised_kib // 1024} MiB)")


def _federation(config: Any, args: argparse.Namespace) -> int:
    """APEL records of a period, or the GLUE description."""
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    from occi_server.backends import load_backends
    from occi_server.service import Service
    from occi_server.service.accounting import apel_message, spool
    from occi_server.store import Store

    config.validate()
    store = Store(config.effective_database_url)
    store.migrate()
    service = Service(config, store, load_backends(config))
    if args.command == "glue-info":
        print(json.dumps(service.glue(), indent=2))
        return 0

    def moment(text: str) -> datetime:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"{text!r} is not an ISO 8601 date or time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    start = moment(args.start)
    end = moment(args.end) if args.end else datetime.now(UTC)
    if end <= start:
        raise ConfigError("--end must be after --start")
    records = service.accounting(start, end)
    message = apel_message(records)
    if args.spool:
        path = spool(message, Path(args.spool))
        print(f"{len(records)} records queued as {path}")
    else:
        sys.stdout.write(message)
    return 0


def _volumes(config: Any, volume_id: str | None) -> int:
    """List the quarantine, or restore one volume and register it again."""
    from datetime import UTC, datetime

    from occi_server.backends import load_pool
    from occi_server.backends.pool import stem_of_key
    from occi_server.core import Entity
    from occi_server.errors import BackendFailure, BackendUnavailable
    from occi_server.kinds.infrastructure import GIB, STORAGE
    from occi_server.store import Store

    try:
        pool = load_pool(config.validate())
    except BackendUnavailable as exc:
        raise ConfigError(exc.message) from None
    if pool is None:
        raise ConfigError("deleted volumes are kept by the filepool and lvm storage backends; "
                          "set storage_backend (or OCCI_STORAGE_BACKEND)")
    if volume_id is None:
        for stem, deleted in pool.aside():
            wiped = datetime.fromtimestamp(deleted + pool.grace_seconds, UTC)
            print(f"{stem.removeprefix('vol-')}\tdeleted "
                  f"{datetime.fromtimestamp(deleted, UTC):%Y-%m-%d %H:%M} UTC\twiped after "
                  f"{wiped:%Y-%m-%d %H:%M} UTC")
        return 0
    store = Store(config.effective_database_url)
    key = volume_id
    with store.transaction(write=True) as repo:
        if repo.by_key(key) is not None:
            raise ConfigError(f"volume {key} exists; nothing to restore")
        try:
            size = pool.restore(key)  # and exported again over iSCSI
            tenant, owner, kept_id = pool.owner(stem_of_key(key))
        except (BackendFailure, BackendUnavailable) as exc:
            raise ConfigError(str(exc)) from None
        # Back at its own id, unless that was taken meanwhile: then at its key.
        volume_id = kept_id if kept_id and repo.get(kept_id) is None else key
        location = f"{STORAGE.location}{volume_id}"
        repo.insert(Entity(id=volume_id, key=key, kind=STORAGE.type_id, location=location,
                           tenant=tenant, owner=owner, attributes={
            "occi.core.id": volume_id, "occi.storage.size": size / GIB,
            "occi.storage.state": "online",
            "occi.storage.state.message": "restored from quarantine"}))
    print(f"restored {location} ({size / GIB:g} GiB)")
    return 0


def _serve(config: Any, *, debug: bool) -> int:
    from occi_server.http import create_app
    app = create_app(config, background=debug)
    host, _, port = config.listen.rpartition(":")
    logging.getLogger("occi_server").info(
        "%s listening on %s://%s:%s/ (compute %s, storage %s, network %s, store %s)",
        SERVER_HEADER, "https" if config.tls_cert else "http", host, port,
        *(config.backend_for(area) for area in ("compute", "storage", "network")),
        config.effective_database_url.split("://")[0])
    if debug:
        app.run(host=host.strip("[]"), port=int(port), debug=False, use_reloader=False)
        return 0
    from occi_server.wsgi import GunicornServer
    store = app.extensions["occi.store"]
    reconciler = app.extensions.get("occi.reconciler")

    def child_exit(_server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)

    def post_fork(_server: Any, _worker: Any) -> None:
        # The master stays single-threaded (forking a threaded process can leave
        # locks held in the child); each worker opens its own database
        # connections and runs a reconciler (a lock file elects one at a time).
        store.dispose()
        # A thread back from the database (holding its write lock, perhaps) gets
        # the interpreter within half a millisecond rather than 5: other writers,
        # in every process, wait for that thread's commit.
        sys.setswitchinterval(SWITCH_SECONDS)
        if reconciler is not None:
            reconciler.start()

    def worker_exit(_server: Any, _worker: Any) -> None:
        # A worker stopping cleanly hands the reconciler's lease on at once.
        if reconciler is not None:
            reconciler.stop()

    tls: dict[str, Any] = {}
    if config.tls_cert:
        import ssl
        tls = {"certfile": config.tls_cert, "keyfile": config.tls_key}
        if config.tls_client_ca:  # certificates are optional: other credentials still work
            tls.update(ca_certs=config.tls_client_ca, cert_reqs=ssl.CERT_OPTIONAL)
    # Everything made so far (modules, the app, the built-in model) lives as long
    # as the workers: the collector need not walk it again on every full pass,
    # which a listing of thousands of entities sets off several times.
    gc.freeze()
    GunicornServer(app, {
        **tls,
        "bind": config.listen,
        "workers": config.effective_workers,
        "worker_class": "gthread",
        "threads": config.threads,
        "timeout": 120,
        "graceful_timeout": 30,
        # A longer header line is 431 (text/occi clients send user data in one).
        "limit_request_field_size": config.max_header_bytes,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": config.log_level,
        # Gunicorn's control socket has one path per user: several servers on one
        # host (front ends, tests) would take it from each other.
        "control_socket_disable": True,
        "post_fork": post_fork,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
    }).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
