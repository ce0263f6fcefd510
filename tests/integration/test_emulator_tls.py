"""Both emulators over TLS with a generated CA, plus the CLI flags (--tls-dir, --faults)."""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import requests
from cryptography import x509
from spaceone.api.inventory.v1 import cloud_service_pb2, cloud_service_pb2_grpc

from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer
from emulators.tls import (
    TlsFiles,
    grpc_channel_credentials,
    grpc_server_credentials,
    make_ca_and_server_cert,
    prism_ssl_context,
)
from tests.helpers import wait_for_ready_file

ROOT = Path(__file__).resolve().parents[2]
AUTH = ("admin", "nutanix/4u")
V3 = "/api/nutanix/v3"


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TlsFiles:
    return make_ca_and_server_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> TlsFiles:
    return make_ca_and_server_cert(tmp_path_factory.mktemp("tls-other"))


def test_generated_certificate(tls: TlsFiles) -> None:
    cert = x509.load_pem_x509_certificate(Path(tls.cert_pem).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    ca = x509.load_pem_x509_certificate(Path(tls.ca_pem).read_bytes())
    assert cert.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(os.stat(tls.key_pem).st_mode) == 0o600


# ------------------------------------------------------------------ Prism over HTTPS
def test_prism_https_needs_the_ca(tls: TlsFiles, other_ca: TlsFiles) -> None:
    pc = generate_fleet(FleetSpec(vms=5))[0]
    with PrismServer(pc, ssl_context=prism_ssl_context(tls)) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        url = srv.url + V3 + "/vms/list"
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(url, json={}, auth=AUTH, timeout=5)  # verify=True, system CAs only
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(url, json={}, auth=AUTH, timeout=5, verify=other_ca.ca_pem)
        r = requests.post(url, json={}, auth=AUTH, timeout=5, verify=tls.ca_pem)
        assert r.status_code == 200 and r.json()["metadata"]["total_matches"] == 5
        r = requests.post(f"https://localhost:{srv.port}{V3}/vms/list", json={}, auth=AUTH, timeout=5,
                          verify=tls.ca_pem)  # the DNS SAN works too
        assert r.status_code == 200


# ------------------------------------------------------------------ CloudForet over TLS
def test_cloudforet_tls_needs_a_secure_channel_with_the_ca(tmp_path: Path, tls: TlsFiles,
                                                           other_ca: TlsFiles) -> None:
    emu = CloudForetEmulator(str(tmp_path / "cf.db"), EmulatorConfig(),
                             server_credentials=grpc_server_credentials(tls)).start()
    try:
        md = (("token", emu.app_token()),)
        query = cloud_service_pb2.CloudServiceQuery()
        with grpc.secure_channel(emu.endpoint, grpc_channel_credentials(tls.ca_pem)) as ch:
            assert cloud_service_pb2_grpc.CloudServiceStub(ch).list(query, metadata=md, timeout=5).total_count == 0
        for channel in (grpc.insecure_channel(emu.endpoint),
                        grpc.secure_channel(emu.endpoint, grpc_channel_credentials(other_ca.ca_pem))):
            with channel, pytest.raises(grpc.RpcError) as info:
                cloud_service_pb2_grpc.CloudServiceStub(channel).list(query, metadata=md, timeout=2)
            assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        emu.stop()


# ------------------------------------------------------------------ CLIs
def _wait_ready(path: Path, proc: subprocess.Popen) -> dict:
    wait_for_ready_file(path, proc)
    return json.loads(path.read_text())


def test_clis_serve_tls_with_faults(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prism_ready, cf_ready = tmp_path / "prism.json", tmp_path / "cf.json"
    prism = subprocess.Popen(
        [sys.executable, "-m", "emulators.prism", "--port", "0", "--vms", "5", "--ready-file", str(prism_ready),
         "--tls-dir", str(tmp_path / "prism-tls"), "--faults", "503@calls=1", "--fault-seed", "3"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cf = subprocess.Popen(
        [sys.executable, "-m", "emulators.cloudforet", "--db", str(tmp_path / "cf.db"), "--ready-file",
         str(cf_ready), "--tls-dir", str(tmp_path / "cf-tls"), "--faults", "UNAVAILABLE@calls=1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p = _wait_ready(prism_ready, prism)["prism_centrals"][0]
        assert p["scheme"] == "https" and p["url"].startswith("https://")
        assert p["ca_bundle"] == str(tmp_path / "prism-tls" / "ca.pem") and p["faults"] == "503@calls=1"
        codes = [requests.post(p["url"] + V3 + "/vms/list", json={}, auth=AUTH, timeout=5,
                               verify=p["ca_bundle"]).status_code for _ in range(2)]
        assert codes == [503, 200]

        info = _wait_ready(cf_ready, cf)
        assert info["tls"] is True and Path(info["ca_bundle"]).is_file()
        md = (("token", info["app_tokens"]["app-nutanix-collector"]),)
        with grpc.secure_channel(info["endpoint"], grpc_channel_credentials(info["ca_bundle"])) as ch:
            stub = cloud_service_pb2_grpc.CloudServiceStub(ch)
            with pytest.raises(grpc.RpcError) as err:
                stub.list(cloud_service_pb2.CloudServiceQuery(), metadata=md, timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert stub.list(cloud_service_pb2.CloudServiceQuery(), metadata=md, timeout=5).total_count == 0
    finally:
        for proc in (prism, cf):
            proc.send_signal(signal.SIGTERM)
        for proc in (prism, cf):
            out, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err


def test_clis_reject_bad_fault_specs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "emulators.prism", "--port", "0", "--faults", "503:7"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
             subprocess.Popen([sys.executable, "-m", "emulators.cloudforet", "--db", str(tmp_path / "x.db"),
                               "--faults", "NOPE"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    for proc, bad in zip(procs, ("'503:7'", "'NOPE'")):
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 2 and bad in err
