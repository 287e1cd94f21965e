"""Configuration: defaults, TOML file, OCCI_* environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from occi_server.config import ConfigError, load_config


def test_environment_overrides_file(tmp_path) -> None:
    path = tmp_path / "occi.toml"
    path.write_text('backend = "simulated"\nmax_page_size = 10\nlisten = "0.0.0.0:9000"\n')
    config = load_config(str(path), environ={"OCCI_MAX_PAGE_SIZE": "50",
                                             "OCCI_FLAVOURS": '[{"term": "x", "cores": 1, '
                                                              '"memory": 1, "disk": 1}]'})
    assert config.max_page_size == 50
    assert config.listen == "0.0.0.0:9000"
    assert config.flavours[0]["term"] == "x"
    assert config.validate() is config


def test_backend_must_be_chosen() -> None:
    with pytest.raises(ConfigError, match="OCCI_BACKEND"):
        load_config(environ={}).validate()


@pytest.mark.parametrize(("environ", "message"), [
    ({"OCCI_BACKEND": "vmware"}, "unknown compute backend .vmware."),
    ({"OCCI_BACKEND": "simulated", "OCCI_STORAGE_BACKEND": "libvirt"}, "unknown storage"),
    ({"OCCI_BACKEND": "simulated", "OCCI_ACCELERATOR": "xen"}, "accelerator"),
    ({"OCCI_BACKEND": "simulated", "OCCI_VOLUME_ACCESS": "nfs"},
     "volume_access must be local or iscsi, not 'nfs'"),
    ({"OCCI_BACKEND": "simulated", "OCCI_NETWORK_UPLINK": "eth0;reboot"}, "network_uplink"),
    ({"OCCI_BACKEND": "simulated", "OCCI_JOB_WAIT_SECONDS": "soon"}, "OCCI_JOB_WAIT_SECONDS"),
    ({"OCCI_BACKEND": "simulated", "OCCI_NETWORK_UPLINK": "a-very-long-uplink"}, "1-15"),
    ({"OCCI_BACKEND": "simulated", "OCCI_NETWORK_NAMESPACE": "../x"}, "network_namespace"),
    ({"OCCI_BACKEND": "simulated", "OCCI_ISCSI_EXPORTER": "iet"},
     "iscsi_exporter must be auto, lio, tgt or none"),
    ({"OCCI_BACKEND": "simulated", "OCCI_WORKERS": "many"}, "OCCI_WORKERS"),
    ({"OCCI_BACKEND": "simulated", "OCCI_AUTH": "kerberos"}, "auth must be none, or one"),
    ({"OCCI_BACKEND": "simulated", "OCCI_AUTH": "oidc"}, "oidc_issuer, oidc_audience"),
    ({"OCCI_BACKEND": "simulated", "OCCI_AUTH": "x509"}, "trusted_proxies"),
    ({"OCCI_BACKEND": "simulated", "OCCI_TRUSTED_PROXIES": '["10.0.0.300"]'},
     "trusted_proxies"),
    ({"OCCI_BACKEND": "simulated", "OCCI_QUOTAS": '{"default": {"gpus": 1}}'},
     "unknown quota 'gpus'"),
    ({"OCCI_BACKEND": "simulated", "OCCI_RATE_LIMIT_ANONYMOUS": "lots"}, "COUNT/second"),
    ({"OCCI_BACKEND": "simulated", "OCCI_LISTEN": "8080"}, "HOST:PORT"),
    ({"OCCI_BACKEND": "simulated", "OCCI_CIMI_PATH": "/compute/"}, "cimi_path"),
    ({"OCCI_BACKEND": "simulated", "OCCI_CIMI_PATH": "/a/b/"}, "one segment"),
])
def test_bad_values_are_explained(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ).validate()


def test_unknown_keys_in_file_are_refused(tmp_path) -> None:
    path = tmp_path / "occi.toml"
    path.write_text('backnd = "simulated"\n')
    with pytest.raises(ConfigError, match="backnd"):
        load_config(str(path), environ={})


def test_default_database_lives_in_the_data_dir(tmp_path) -> None:
    config = load_config(environ={"OCCI_DATA_DIR": str(tmp_path)})
    assert config.effective_database_url == f"sqlite:///{tmp_path}/occi.sqlite3"


def test_the_example_configuration_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "occi.toml.example"
    config = load_config(str(example), environ={}).validate()
    assert (config.compute_backend, config.storage_backend, config.network_backend) == (
        "libvirt", "filepool", "bridge")
    assert (config.iscsi_portal, config.network_uplink) == ("192.0.2.10:3260", "eth0")


def test_each_driver_has_a_section(tmp_path) -> None:
    path = tmp_path / "occi.toml"
    path.write_text('backend = "simulated"\n[libvirt]\nuri = "qemu+ssh://root@node2/system"\n'
                    'shutdown_timeout = 30\n[iscsi]\nportal = "192.0.2.10:3260"\n'
                    '[bridge]\nnamespace = "occi"\n')
    config = load_config(str(path), environ={"OCCI_ISCSI_PORTAL": "192.0.2.11:3260"})
    assert (config.libvirt_uri, config.shutdown_timeout, config.network_namespace) == (
        "qemu+ssh://root@node2/system", 30, "occi")
    assert config.iscsi_portal == "192.0.2.11:3260"  # the environment still wins


@pytest.mark.parametrize(("text", "message"), [
    ('[libvirt]\nurl = "qemu:///system"\n', "unknown key url in \\[libvirt\\]"),
    ('libvirt_uri = "a"\n[libvirt]\nuri = "b"\n', "sets libvirt_uri twice"),
    ('libvirt = "qemu:///system"\n', "libvirt in .* is a section"),
])
def test_sections_refuse_what_they_do_not_know(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "occi.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path), environ={})
