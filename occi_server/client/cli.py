"""occi: the command line for any OCCI 1.2 site.

Exit codes: 0 done; 2 wrong usage; 3 the site refused the request (4xx);
4 the site could not be reached or failed (5xx); 5 `--wait` (or `--ssh`) saw the resource
fail or time out."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import get_completion_class

from occi_server.client.api import MEDIA_TYPES, ClientError, Entity, Model, OcciClient
from occi_server.client.profiles import AUTH_KINDS, Site, load_sites
from occi_server.core.specs import CategorySpec

REFUSED, UNREACHABLE, FAILED, SOME_SITES_FAILED = 3, 4, 5, 6


class Context:
    """What the global options chose. The site is resolved on first use, so
    that `--help` and `completion` need none."""

    def __init__(self, options: dict[str, Any], output: str) -> None:
        self.options = options
        self.output = output
        self._sites: tuple[dict[str, Site], Site] | None = None
        self._client: OcciClient | None = None

    @property
    def sites(self) -> dict[str, Site]:
        return self._resolve()[0]

    @property
    def site(self) -> Site:
        return self._resolve()[1]

    def _resolve(self) -> tuple[dict[str, Site], Site]:
        if self._sites is None:
            self._sites = _choose_site(**self.options)
        return self._sites

    @property
    def client(self) -> OcciClient:
        if self._client is None:
            self._client = self.site.client()
        return self._client


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn client errors into a message on stderr and an exit code scripts can trust."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ClientError as exc:
            click.echo(f"occi: {exc.message}", err=True)
            code = REFUSED if exc.status is not None and exc.status < 500 else UNREACHABLE
            if exc.status is None and "cannot reach" not in exc.message:
                code = REFUSED  # a local mistake: unknown kind, missing credentials, …
            sys.exit(code)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--endpoint", "-e", envvar="OCCI_ENDPOINT", help="URL of the OCCI site.")
@click.option("--site", "-s", "site_name", envvar="OCCI_SITE",
              help="A site from the profile file (see --sites-file).")
@click.option("--sites-file", envvar="OCCI_SITES",
              help="Profile file [~/.config/occi/sites.toml].")
@click.option("--auth", "-a", type=click.Choice(AUTH_KINDS), help="Authentication scheme.")
@click.option("--user", "-u", envvar="OCCI_USER", help="User name for basic authentication.")
@click.option("--password", "-p", envvar="OCCI_PASSWORD", help="Password for basic auth.")
@click.option("--token", "-t", envvar="OCCI_TOKEN", help="Bearer token (OIDC access token).")
@click.option("--certificate", type=click.Path(dir_okay=False),
              help="Client certificate (PEM) for x509 authentication.")
@click.option("--key", type=click.Path(dir_okay=False), help="Its private key, if separate.")
@click.option("--ca", type=click.Path(), help="CA bundle to verify the site with.")
@click.option("--tenant", envvar="OCCI_TENANT",
              help="Tenant to act for, if you belong to several (occi-server sites).")
@click.option("--media-type", "-m", type=click.Choice(MEDIA_TYPES),
              help="Rendering to talk in [text/plain].")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="How to print results.")
@click.pass_context
def cli(ctx: click.Context, endpoint: str | None, site_name: str | None,
        sites_file: str | None, auth: str | None, user: str | None, password: str | None,
        token: str | None, certificate: str | None, key: str | None, ca: str | None,
        tenant: str | None, media_type: str | None, output: str) -> None:
    """Drive an OCCI 1.2 cloud: discover what it offers, create, list, describe,
    update, link and delete resources, trigger actions, or `run` a machine."""
    ctx.obj = Context({"endpoint": endpoint, "site_name": site_name, "sites_file": sites_file,
                       "auth": auth, "user": user, "password": password, "token": token,
                       "certificate": certificate, "key": key, "ca": ca, "tenant": tenant,
                       "media_type": media_type}, output)


def _choose_site(*, endpoint: str | None, site_name: str | None, sites_file: str | None,
                 auth: str | None, user: str | None, password: str | None, token: str | None,
                 certificate: str | None, key: str | None, ca: str | None,
                 tenant: str | None, media_type: str | None) -> tuple[dict[str, Site], Site]:
    """The profiles, and the site the options name (command-line values win)."""
    sites, default = load_sites(sites_file)
    if endpoint:
        base = Site(name=endpoint, endpoint=endpoint)
    elif site_name or default:
        name = site_name or default
        if name not in sites:
            raise ClientError(f"no site {name!r} in the profile file; known: "
                              + (", ".join(sites) or "none"))
        base = sites[name]
    else:
        raise ClientError("name a site: --endpoint URL, --site NAME, or a default site in "
                          "~/.config/occi/sites.toml")
    overrides = {k: v for k, v in {
        "auth": auth, "user": user, "password": password, "token": token,
        "certificate": certificate, "key": key, "media_type": media_type,
        "verify": ca, "tenant": tenant}.items() if v is not None}
    if not auth and (user or token or certificate) and base.auth == "none":
        overrides["auth"] = "basic" if user else "token" if token else "x509"
    return sites, Site(**{**base.__dict__, **overrides})


def _emit(context: Context, data: Any, table: Iterable[Iterable[Any]],
          headers: tuple[str, ...]) -> None:
    if context.output == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    rows = [tuple("" if c is None else str(c) for c in row) for row in table]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
               .rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _value(text: str) -> Any:
    """A command-line attribute value: numbers and true/false as such, the rest as text
    (quote it, '"2"', to keep a number as text)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _attributes(pairs: Iterable[str]) -> dict[str, Any]:
    values = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--attribute")
        values[name.strip()] = _value(value)
    return values


def _read(argument: str) -> str:
    """`@file` reads a file (~ expanded); anything else is the value itself."""
    if not argument.startswith("@"):
        return argument
    path = Path(argument[1:]).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None


def _context(model: Model, items: Iterable[str]) -> tuple[list[CategorySpec], dict[str, Any]]:
    """Contextualization: ssh_key=@key.pub and user_data=@file, as the OCCI 1.2
    mixins where the site has them, else as the EGI/OpenStack ones."""
    mixins: list[CategorySpec] = []
    values: dict[str, Any] = {}
    for item in items:
        name, equals, argument = item.partition("=")
        if name not in ("ssh_key", "user_data") or not equals:
            raise click.BadParameter(f"{item!r}: use ssh_key=@FILE or user_data=@FILE",
                                     param_hint="--context")
        content = _read(argument)
        if name == "ssh_key":
            modern = "http://schemas.ogf.org/occi/infrastructure/credentials#ssh_key"
            if model.get(modern):
                mixins.append(model.get(modern))  # type: ignore[arg-type]
                values["occi.credentials.ssh.publickey"] = content.strip()
            else:
                mixins.append(model.mixin("http://schemas.openstack.org/instance/credentials"
                                          "#public_key"))
                values["org.openstack.credentials.publickey.data"] = content.strip()
        else:
            encoded = base64.b64encode(content.encode()).decode()
            modern = "http://schemas.ogf.org/occi/infrastructure/compute#user_data"
            if model.get(modern):
                mixins.append(model.get(modern))  # type: ignore[arg-type]
                values["occi.compute.userdata"] = encoded
            else:
                mixins.append(model.mixin("http://schemas.openstack.org/compute/instance"
                                          "#user_data"))
                values["org.openstack.compute.user_data"] = encoded
    return mixins, values


def _entity_json(entity: Entity) -> dict[str, Any]:
    return {"location": entity.location, "kind": entity.kind, "mixins": entity.mixins,
            "attributes": entity.attributes, "actions": entity.actions,
            "links": [{"location": link.location, "target": link.target, "kind": link.kind,
                       "attributes": link.attributes} for link in entity.links]}


# ------------------------------------------------------------------ verbs
@cli.command()
@click.option("--kinds", "what", flag_value="kind", help="Only kinds.")
@click.option("--mixins", "what", flag_value="mixin", help="Only mixins.")
@click.option("--actions", "what", flag_value="action", help="Only actions.")
@click.option("--templates", type=click.Choice(["os_tpl", "resource_tpl"]),
              help="Only OS or resource templates.")
@click.pass_obj
@handles_errors
def discover(context: Context, what: str | None, templates: str | None) -> None:
    """List the kinds, mixins and actions the site offers (its /-/)."""
    model = context.client.discover()
    found = model.templates(templates) if templates else [
        c for c in model.categories if what in (None, c.category_class)]
    _emit(context, [c.__dict__ for c in found],
          ((c.category_class, c.term, c.scheme, c.location, c.title) for c in found),
          ("class", "term", "scheme", "location", "title"))


@cli.command(name="list")
@click.argument("resource")
@click.option("--attribute", "-A", "attributes", multiple=True, metavar="NAME=VALUE",
              help="Only members with this exact value (repeatable).")
@click.option("--mixin", "-M", "mixins", multiple=True, help="Only members with this mixin.")
@click.option("--all-sites", is_flag=True, help="List on every site of the profile file.")
@click.pass_obj
@handles_errors
def list_(context: Context, resource: str, attributes: tuple[str, ...],
          mixins: tuple[str, ...], all_sites: bool) -> None:
    """List a collection: a kind (compute, storage, network, …), a mixin, or a location."""
    sites = list(context.sites.values()) if all_sites else [context.site]
    if all_sites and not sites:
        raise ClientError("--all-sites needs sites in the profile file")
    rows, failing = [], []
    for site in sites:
        try:
            client = context.client if site is context.site else site.client()
            filters = [client.discover().mixin(m) for m in mixins]
            for location in client.list(resource, attributes=_attributes(attributes),
                                        categories=filters):
                rows.append((site.name, location))
        except ClientError as exc:
            if not all_sites:
                raise
            click.echo(f"occi: site {site.name}: {exc.message}", err=True)
            failing.append(site.name)
    if all_sites:
        _emit(context, [{"site": s, "location": loc} for s, loc in rows], rows,
              ("site", "location"))
        if failing:  # the others' answers are out; say that some are missing
            sys.exit(SOME_SITES_FAILED)
    else:
        _emit(context, [loc for _, loc in rows], ((loc,) for _, loc in rows), ("location",))


@cli.command()
@click.argument("locations", nargs=-1, required=True)
@click.pass_obj
@handles_errors
def describe(context: Context, locations: tuple[str, ...]) -> None:
    """Show entities: kind, mixins, attributes, links and possible actions."""
    entities = [context.client.describe(location) for location in locations]
    if context.output == "json":
        _emit(context, [_entity_json(e) for e in entities], (), ())
        return
    for entity in entities:
        click.echo(entity.location)
        rows = [("kind", entity.kind), *(("mixin", m) for m in entity.mixins),
                *((name, value) for name, value in entity.attributes.items()),
                *(("link", f"{link.location or ''} -> {link.target}") for link in entity.links),
                ("actions", " ".join(entity.actions))]
        _emit(context, None, rows, ("field", "value"))
        click.echo()


@cli.command()
@click.option("--resource", "-r", "kind", required=True,
              help="Kind to create: compute, storage, network, …")
@click.option("--mixin", "-M", "mixins", multiple=True,
              help="Mixin by type id or parent#term (os_tpl#debian-12, resource_tpl#small).")
@click.option("--attribute", "-A", "attributes", multiple=True, metavar="NAME=VALUE")
@click.option("--context", "-c", "contexts", multiple=True, metavar="ssh_key=@FILE|user_data=@FILE",
              help="Contextualization for a compute.")
@click.option("--link", "-l", "links", multiple=True, metavar="LOCATION",
              help="Link the new resource to a network or storage (repeatable).")
@click.pass_obj
@handles_errors
def create(context: Context, kind: str, mixins: tuple[str, ...], attributes: tuple[str, ...],
           contexts: tuple[str, ...], links: tuple[str, ...]) -> None:
    """Create a resource; prints its location."""
    model = context.client.discover()
    context_mixins, context_values = _context(model, contexts)
    location = context.client.create(
        model.kind(kind), mixins=[*(model.mixin(m) for m in mixins), *context_mixins],
        attributes={**_attributes(attributes), **context_values},
        links=[(link, None) for link in links])
    _emit(context, {"location": location}, [(location,)], ("location",))


@cli.command()
@click.argument("location")
@click.option("--mixin", "-M", "mixins", multiple=True, help="Mixin to add.")
@click.option("--attribute", "-A", "attributes", multiple=True, metavar="NAME=VALUE")
@click.pass_obj
@handles_errors
def update(context: Context, location: str, mixins: tuple[str, ...],
           attributes: tuple[str, ...]) -> None:
    """Change attributes of an entity or add mixins (a new resource_tpl resizes)."""
    model = context.client.discover()
    entity = context.client.update(location, mixins=[model.mixin(m) for m in mixins],
                                   attributes=_attributes(attributes))
    _emit(context, _entity_json(entity), ((k, v) for k, v in entity.attributes.items()),
          ("attribute", "value"))


@cli.command()
@click.argument("locations", nargs=-1, required=True)
@click.pass_obj
@handles_errors
def delete(context: Context, locations: tuple[str, ...]) -> None:
    """Delete entities (a resource's links go with it)."""
    for location in locations:
        context.client.delete(location)
    _emit(context, {"deleted": list(locations)}, ((loc,) for loc in locations), ("deleted",))


@cli.command()
@click.argument("location")
@click.argument("action")
@click.option("--attribute", "-A", "attributes", multiple=True, metavar="NAME=VALUE",
              help="Action parameter, e.g. method=graceful.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the action is done (the site may answer while it runs).")
@click.option("--timeout", type=float, default=600, show_default=True,
              help="Seconds --wait waits at most.")
@click.pass_obj
@handles_errors
def trigger(context: Context, location: str, action: str, attributes: tuple[str, ...],
            wait: bool, timeout: float) -> None:
    """Trigger an action (start, stop, restart, suspend, save, up, down, online, …)."""
    entity = context.client.trigger(location, action, _attributes(attributes))
    if wait:
        entity = _settled(context, location, timeout)
    _emit(context, _entity_json(entity), [(entity.location, entity.state)],
          ("location", "state"))


@cli.command()
@click.argument("source")
@click.argument("target")
@click.option("--mixin", "-M", "mixins", multiple=True)
@click.option("--attribute", "-A", "attributes", multiple=True, metavar="NAME=VALUE")
@click.pass_obj
@handles_errors
def link(context: Context, source: str, target: str, mixins: tuple[str, ...],
         attributes: tuple[str, ...]) -> None:
    """Link a compute to a network (interface) or a storage (disk); prints the link."""
    model = context.client.discover()
    location = context.client.link(source, target, mixins=[model.mixin(m) for m in mixins],
                                   attributes=_attributes(attributes))
    _emit(context, {"location": location}, [(location,)], ("location",))


@cli.command()
@click.argument("link_location")
@click.pass_obj
@handles_errors
def unlink(context: Context, link_location: str) -> None:
    """Remove a link (detach a disk, unplug an interface)."""
    context.client.unlink(link_location)
    _emit(context, {"deleted": link_location}, [(link_location,)], ("deleted",))


@cli.command()
@click.argument("image")
@click.option("--flavour", "-f", help="Resource template (resource_tpl term), e.g. small.")
@click.option("--title", help="Name of the machine.")
@click.option("--ssh-key", type=click.Path(dir_okay=False), help="Public key to install.")
@click.option("--user-data", type=click.Path(dir_okay=False), help="cloud-init user data file.")
@click.option("--volume", metavar="NAME|GIB",
              help="Attach this volume (its title, id or location), or a new one of GIB.")
@click.option("--network", help="Attach to this network (its title, id or location).")
@click.option("--wait", is_flag=True, help="Show progress until the machine is active.")
@click.option("--ssh", "ssh", is_flag=True,
              help="Wait until the machine answers SSH, then log in (from a terminal) or "
                   "print the ssh command line.")
@click.option("--ssh-user", default="debian", show_default=True,
              help="The image's login user, for --ssh.")
@click.option("--timeout", type=float, default=600, show_default=True,
              help="Seconds --wait and --ssh wait.")
@click.pass_obj
@handles_errors
def run(context: Context, image: str, flavour: str | None, title: str | None,
        ssh_key: str | None, user_data: str | None, volume: str | None,
        network: str | None, wait: bool, ssh: bool, ssh_user: str, timeout: float) -> None:
    """Start a machine from IMAGE (an os_tpl term), StratusLab-style."""
    client = context.client
    model = client.discover()
    mixins = [model.mixin(f"os_tpl#{image}" if "#" not in image else image)]
    if flavour:
        mixins.append(model.mixin(f"resource_tpl#{flavour}" if "#" not in flavour else flavour))
    contexts = [*([f"ssh_key=@{ssh_key}"] if ssh_key else []),
                *([f"user_data=@{user_data}"] if user_data else [])]
    context_mixins, values = _context(model, contexts)
    if title:
        values["occi.core.title"] = title
    links: list[tuple[str, None]] = []
    if network:
        links.append((_find(client, "network", network), None))
    if volume:
        links.append((_volume(client, model, volume, title or image), None))
    location = client.create(model.kind("compute"), mixins=[*mixins, *context_mixins],
                             attributes=values, links=links)
    if not (wait or ssh):
        _emit(context, {"location": location}, [(location,)], ("location",))
        return
    entity = _wait_active(context, location, timeout)
    addresses = entity.addresses
    if not ssh:
        _emit(context, {"location": location, "state": entity.state, "addresses": addresses},
              [(location, entity.state, " ".join(addresses) or "(none)")],
              ("location", "state", "addresses"))
        return
    if not addresses:
        raise ClientError(f"{location} has no address to log in to; give it a --network")
    command = ["ssh", *_identity(ssh_key), f"{ssh_user}@{addresses[0]}"]
    _wait_ssh(command, addresses[0], timeout)
    if sys.stdin.isatty() and sys.stdout.isatty():
        os.execvp("ssh", command)  # noqa: S606 - an argument list; the user asked to log in
    click.echo(shlex.join(command))


def _volume(client: OcciClient, model: Model, wanted: str, owner: str) -> str:
    """An existing volume by title, id or location; a number is the size of a new one."""
    try:
        size = float(wanted)
    except ValueError:
        return _find(client, "storage", wanted)
    return client.create(model.kind("storage"), attributes={
        "occi.storage.size": size, "occi.core.title": f"volume of {owner}"})


def _identity(ssh_key: str | None) -> list[str]:
    """`-i PRIVATE` when the public key given has its private key beside it."""
    if ssh_key and ssh_key.endswith(".pub") and Path(ssh_key[:-4]).is_file():
        return ["-i", ssh_key[:-4]]
    return []


def _wait_ssh(command: list[str], address: str, timeout: float) -> None:
    """Until `command` logs in without asking anything: sshd answers before
    cloud-init has installed the key, so a banner is not enough. Without a
    private key at hand (ssh-agent may hold it), until sshd sends its banner."""
    click.echo(f"waiting for SSH on {address}", err=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "-i" in command:
            # The probe runs `true` and records no host key: the address may have
            # served an earlier machine, and the user's ssh asks about it as usual.
            probe = [command[0], "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                     "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                     "-o", "LogLevel=ERROR", *command[1:], "true"]
            if subprocess.run(probe, capture_output=True, timeout=60).returncode == 0:
                return
        else:
            with contextlib.suppress(OSError), socket.create_connection(
                    (address, 22), timeout=5) as connection:
                if connection.recv(4).startswith(b"SSH-"):
                    return
        time.sleep(2)
    click.echo(f"occi: {address} does not answer SSH after {timeout:g} s", err=True)
    sys.exit(FAILED)


def _find(client: OcciClient, kind: str, wanted: str) -> str:
    """A network or storage by location, title (one filtered listing) or id."""
    if wanted.startswith(("/", "http://", "https://")):
        return wanted
    titled = client.list(kind, attributes={"occi.core.title": wanted})
    if len(titled) > 1:
        raise ClientError(f"several {kind} resources are titled {wanted!r}; give a location")
    if titled:
        return titled[0]
    for location in client.list(kind):
        if location.rstrip("/").rpartition("/")[2] == wanted:
            return location
    raise ClientError(f"no {kind} titled or identified {wanted!r}; `occi list {kind}`")


def _settled(context: Context, location: str, timeout: float) -> Entity:
    """The entity once its job is done: no longer `waiting` (a graceful stop may
    take the guest's whole shutdown timeout)."""
    deadline = time.monotonic() + timeout
    entity = context.client.describe(location)
    while entity.state == "waiting":
        if time.monotonic() > deadline:
            click.echo(f"occi: {location} is still waiting after {timeout:g} s", err=True)
            sys.exit(FAILED)
        time.sleep(1)
        entity = context.client.describe(location)
    return entity


def _wait_active(context: Context, location: str, timeout: float) -> Entity:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        entity = context.client.describe(location)
        if entity.state != last:
            click.echo(f"{location}: {entity.state} "
                       f"{entity.attributes.get('occi.compute.state.message') or ''}".rstrip(),
                       err=True)
            last = entity.state
        if entity.state == "active":
            return entity
        if entity.state == "error":
            click.echo("occi: the machine failed: "
                       f"{entity.attributes.get('occi.compute.state.message')}", err=True)
            sys.exit(FAILED)
        if time.monotonic() > deadline:
            click.echo(f"occi: not active after {timeout:g} s", err=True)
            sys.exit(FAILED)
        time.sleep(1)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(occi completion bash)"."""
    completion_class = get_completion_class(shell)
    assert completion_class is not None
    click.echo(completion_class(cli, {}, "occi", "_OCCI_COMPLETE").source())


def main() -> None:
    cli(prog_name="occi")
