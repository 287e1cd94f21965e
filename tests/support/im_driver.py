"""Drives IM 1.19.1's OCCI connector (IM/connectors/OCCI.py, GRyCAP's
Infrastructure Manager) through IM's own classes against an occi-server, as
IM does for a user's infrastructure. Runs in IM's own virtual environment
(tests/support/im.py makes it), never imports occi-server, and prints one JSON
object: each step, whether IM saw it succeed, and what it said.

    python im_driver.py URL TOKEN   (an OIDC access token: IM's bearer path)
"""

from __future__ import annotations

import json
import sys
from typing import Any

from IM.auth import Authentication
from IM.CloudInfo import CloudInfo
from IM.connectors.OCCI import OCCICloudConnector
from IM.InfrastructureInfo import InfrastructureInfo
from radl import radl_parse

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMim im@occi-server-tests"
SYSTEM = """
network private ()
system node (
  cpu.arch = 'x86_64' and cpu.count >= 1 and memory.size >= 1g and
  net_interface.0.connection = 'private' and net_interface.0.dns_name = 'node-#N#' and
  disk.0.os.name = 'linux' and disk.0.image.url = '{url}/os_tpl/debian-12' and
  disk.0.os.credentials.username = 'cloudadm' and
  disk.0.os.credentials.public_key = '{key}' and
  {more}
)
"""
NEW_VOLUME = "disk.1.size = 1GB and disk.1.device = 'hdb' and disk.1.mount_path = '/mnt/data'"


def main(url: str, token: str) -> dict[str, Any]:
    # The user's credentials as IM holds them: the site's, and IM's own (the VMs'
    # boot commands call back to IM with them).
    auth = Authentication([{"id": "occi", "type": "OCCI", "host": url, "token": token},
                           {"type": "InfrastructureManager", "token": token}])
    [cloud] = CloudInfo.get_cloud_list(auth)
    infrastructure = InfrastructureInfo()
    infrastructure.auth = auth
    occi = OCCICloudConnector(cloud, infrastructure)
    steps: dict[str, Any] = {}

    def step(name: str, outcome: Any) -> Any:
        ok, said = outcome if isinstance(outcome, tuple) else (bool(outcome), outcome)
        steps[name] = {"ok": bool(ok), "said": said if isinstance(said, str) else ""}
        return said

    def launch(name: str, more: str) -> Any:
        radl = radl_parse.parse_radl(SYSTEM.format(url=url, key=KEY, more=more))
        [outcome] = occi.launch(infrastructure, radl, radl, 1, auth)
        vm = step(name, outcome)
        return vm if outcome[0] else None

    vm = launch("launch with a new volume, user data and a public key", NEW_VOLUME)
    if vm is not None:
        step("updateVMInfo", occi.updateVMInfo(vm, auth))
        steps["the VM's volume"] = {"ok": bool(vm.info.systems[0].getValue("disk.1.size")),
                                    "said": str(vm.info.systems[0].getValue("disk.1.device"))}
        for action in ("stop", "start", "reboot"):
            step(action, getattr(occi, action)(vm, auth))
        more = radl_parse.parse_radl(SYSTEM.format(url=url, key=KEY, more=(
            NEW_VOLUME + " and disk.2.size = 2GB and disk.2.device = 'hdc'")))
        step("alterVM: add a disk", occi.alterVM(vm, more, auth))
        public = radl_parse.parse_radl(SYSTEM.format(url=url, key=KEY, more=NEW_VOLUME).replace(
            "network private ()", "network public (outbound = 'yes')\nnetwork private ()"
        ).replace("net_interface.0.connection = 'private'",
                  "net_interface.0.connection = 'private' and "
                  "net_interface.1.connection = 'public'"))
        step("alterVM: add a public IP", occi.alterVM(vm, public, auth))
        step("updateVMInfo with the public IP", occi.updateVMInfo(vm, auth))
        steps["the VM's public IP"] = {"ok": bool(vm.getPublicIP()),
                                       "said": str(vm.getPublicIP())}
        private = radl_parse.parse_radl(SYSTEM.format(url=url, key=KEY, more=NEW_VOLUME))
        step("alterVM: remove the public IP", occi.alterVM(vm, private, auth))
        step("updateVMInfo without it", occi.updateVMInfo(vm, auth))
        steps["the public IP is gone"] = {"ok": not vm.getPublicIP(), "said": ""}
        step("finalize", occi.finalize(vm, True, auth))
    sized = launch("launch with an instance_type", "instance_type = 'medium'")
    if sized is not None:
        step("updateVMInfo of the sized VM", occi.updateVMInfo(sized, auth))
        steps["the sized VM's cores"] = {"ok": sized.info.systems[0].getValue("cpu.count") == 2,
                                         "said": str(sized.info.systems[0].getValue("cpu.count"))}
        step("finalize the sized VM", occi.finalize(sized, True, auth))
    return steps


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
