"""Prism v3 entities -> CloudForet cloud services (plain dicts, typed ``Resource``).

Pure functions, so they are tested on the real recorded responses, plus thin
DoFns. Prism answers are untrusted: every field is read defensively and a
malformed entity raises :class:`MalformedEntity`, which the DoFns route to the
dead-letter output instead of failing the run.

Real v3 answers (``../shared/docs/prism.md``, "Seen in real v3 answers") decide
how a VM is read:

- its fields come from ``status``; ``spec`` (the desired state) fills only what
  ``status`` lacks, each such field named in ``data.filled_from_spec``. Prism's
  own ``status.state`` and ``status.message_list`` are kept in
  ``data.prism_state`` and ``data.prism_messages``;
- ``data.size_source`` says where the size came from: ``status``, ``spec``
  (a VM being created or changed) or ``unknown`` (neither has it). Only a size
  read from ``status`` is ``size_known``: the others stay visible as cloud
  services, flagged so, and get no cost rows (``transforms/stages/cost.py``);
- a NIC lists each address once with its type (an address both ASSIGNED and
  LEARNED is ASSIGNED); link-local addresses stay in the NIC detail but not in
  the cloud service's ``ip_addresses``;
- a host without a name is named from its hypervisor IP, controller VM IP,
  serial number or uuid (``data.name_source``), never a dead letter.

Every ``data`` key is always written, empty when Prism has nothing: CloudForet
merges ``data`` one level deep on update, so a key left out would keep its old
value forever.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterable

import apache_beam as beam
from apache_beam import pvalue

from connectors.untrusted_text import CONTROL_CHARACTERS
from transforms.elements import DEAD_LETTER, DeadLetter, InfraEntity, Resource, VmWithStats
from transforms.sources.prism import parse_stats_entity

PROVIDER = "nutanix"
# kind -> (cloud_service_group, cloud_service_type)
TYPES = {
    "vm": ("Compute", "Instance"),
    "disk": ("Storage", "Disk"),
    "cluster": ("Cluster", "Cluster"),
    "host": ("Host", "Host"),
}
CLOUD_SERVICE_TYPES: list[dict[str, Any]] = [
    {"provider": PROVIDER, "group": "Compute", "name": "Instance", "service_code": "AHV", "is_primary": True,
     "is_major": True, "tags": {"spaceone:icon": "nutanix-vm"}},
    {"provider": PROVIDER, "group": "Storage", "name": "Disk", "service_code": "AHV", "is_major": True},
    {"provider": PROVIDER, "group": "Cluster", "name": "Cluster", "service_code": "AOS", "is_major": True},
    {"provider": PROVIDER, "group": "Host", "name": "Host", "service_code": "AHV"},
]
MAX_NAME = 255
MAX_STR = 1024
MAX_COUNT = 1 << 53  # larger "counts" are not counts
MAX_MESSAGES = 20
# An address listed twice keeps the stronger type: Prism assigned it, and also saw it.
_IP_TYPE_RANK = {"ASSIGNED": 0, "LEARNED": 1}
SIZE_KEYS = ("num_sockets", "num_vcpus_per_socket", "memory_size_mib")
_UUID = re.compile(r"^[0-9a-fA-F-]{8,64}$")


class MalformedEntity(ValueError):
    """The entity lacks what a cloud service needs (uuid, name, ...)."""


def clean_str(value: Any, limit: int = MAX_STR) -> str:
    """Hostile strings are common enough: drop control characters, cap size."""
    if type(value) is str and value.isascii() and value.isprintable():  # the usual case: nothing to drop
        return value[:limit]
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)):
        return ""
    text = CONTROL_CHARACTERS.sub("", str(value))
    return text[:limit]


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    """An integer from an untrusted field; absurd, infinite or NaN values give the default."""
    if isinstance(value, bool):
        return default
    if isinstance(value, float):
        if not (value == value and abs(value) < MAX_COUNT):
            return default
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not (text.lstrip("-").isdigit() and len(text) <= 17):
            return default
        value = int(text)
    if isinstance(value, int) and -MAX_COUNT < value < MAX_COUNT:
        return value
    return default


def entity_uuid(entity: Any) -> str:
    if not isinstance(entity, dict):
        raise MalformedEntity("entity is not a JSON object")
    uuid = _dict(entity.get("metadata")).get("uuid")
    if not isinstance(uuid, str) or not _UUID.match(uuid):
        raise MalformedEntity("metadata.uuid is missing or not a uuid")
    return uuid


def entity_name(entity: dict) -> str:
    name = _dict(entity.get("status")).get("name") or _dict(entity.get("spec")).get("name")
    name = clean_str(name, MAX_NAME)
    if not name:
        raise MalformedEntity("entity has no name")
    return name


def is_prism_central(cluster: dict) -> bool:
    """Prism Central lists itself as a cluster; it is not a workload cluster."""
    config = _dict(_dict(_dict(cluster.get("status")).get("resources")).get("config"))
    return "PRISM_CENTRAL" in _list(config.get("service_list"))


def category_tags(entity: dict) -> dict:
    """Prism's categories of an entity, as tags. They are also kept in ``data.categories``
    (always, ``{}`` when none): CloudForet keeps the tags a collector creates with in a
    provider bucket no later public update can change, so ``data`` is where the console
    shows the current ones."""
    cats = _dict(_dict(entity.get("metadata")).get("categories"))
    return {clean_str(k, 128): clean_str(v, 256) for k, v in sorted(cats.items())
            if isinstance(k, str) and k and isinstance(v, (str, int, float))}


def _ref(value: Any) -> dict:
    ref = _dict(value)
    return {"uuid": clean_str(ref.get("uuid"), 64), "name": clean_str(ref.get("name"), MAX_NAME)}


class _StatusFirst:
    """Reads a field from ``status`` and, only where status lacks it, from ``spec``;
    remembers the fields spec filled (a VM being created or changed)."""

    def __init__(self, status: dict, spec: dict, filled: list[str]):
        self.status, self.spec, self.filled = status, spec, filled

    def get(self, key: str) -> Any:
        value = self.status.get(key)
        if value is not None and value != "":
            return value
        value = self.spec.get(key)
        if value is not None and value != "":
            self.filled.append(key)
        return value


def _ip_text(ip: str) -> tuple[str, bool]:
    """(canonical text, is link-local) of an address; text Prism sent that is no
    address is kept as it came, not link-local."""
    if ":" not in ip:  # IPv4 (the usual case, read without ipaddress): its text is canonical
        return ip, ip.startswith("169.254.")  # 169.254.0.0/16
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])  # fe80::1%eth0: a zone index
    except ValueError:
        return ip, False
    return str(addr), addr.is_link_local  # fe80::/10


def nic_ip_addresses(endpoints: Any) -> list[dict]:
    """A NIC's ``ip_endpoint_list`` -> each address once, with its type."""
    types: dict[str, str] = {}
    for e in _list(endpoints):
        if not isinstance(e, dict) or not e.get("ip"):
            continue
        ip = _ip_text(clean_str(e.get("ip"), 64))[0]
        kind = clean_str(e.get("type"), 16).upper()
        if ip not in types or _IP_TYPE_RANK.get(kind, 2) < _IP_TYPE_RANK.get(types[ip], 2):
            types[ip] = kind
    return [{"ip": ip, "type": kind} for ip, kind in types.items()]


def is_link_local(ip: str) -> bool:
    return _ip_text(ip)[1]


def prism_messages(status: dict) -> list[dict]:
    """``status.message_list`` (why a VM is in ERROR) as {reason, message}."""
    out = []
    for m in _list(status.get("message_list"))[:MAX_MESSAGES]:
        if isinstance(m, dict):
            out.append({"reason": clean_str(m.get("reason"), 64), "message": clean_str(m.get("message"), 500)})
    return out


def _gpu(value: Any) -> dict:
    g = _dict(value)
    return {"vendor": clean_str(g.get("vendor"), 32), "mode": clean_str(g.get("mode"), 32),
            "device_id": _int(g.get("device_id")), "name": clean_str(g.get("name"), 128),
            "uuid": clean_str(g.get("uuid"), 64),
            "frame_buffer_size_mib": max(0, _int(g.get("frame_buffer_size_mib"))),
            "guest_driver_version": clean_str(g.get("guest_driver_version"), 64)}


def _vtpm(value: Any) -> dict:
    """vTPM on or off and its version; spec's ``vtpm_secret`` is never read."""
    v = _dict(value)
    return {"enabled": v.get("vtpm_enabled") is True, "version": clean_str(v.get("version"), 32)}


def _source_ref(value: Any) -> dict:
    """What a disk was cloned from (``data_source_reference``: an image, or another disk)."""
    if not isinstance(value, dict):  # most disks: none
        return {"kind": "", "uuid": "", "name": ""}
    return {"kind": clean_str(value.get("kind"), 32), **_ref(value)}


def external_link(base_url: str, kind: str, uuid: str) -> str:
    page = {"vm": "vms", "disk": "vms", "cluster": "clusters", "host": "hosts"}[kind]
    return f"{base_url}/console/#page/explore/s/{page}?entity_id={uuid}"


def _base(kind: str, account: str, uuid: str, name: str, region_code: str, base_url: str,
          link_uuid: str | None = None) -> Resource:
    group, ctype = TYPES[kind]
    return {
        "kind": kind,
        "provider": PROVIDER,
        "cloud_service_group": group,
        "cloud_service_type": ctype,
        "account": account,
        "resource_id": uuid,
        "name": name,
        "region_code": region_code,
        "instance_type": "",
        "instance_size": 0.0,
        "ip_addresses": [],
        "data": {},
        "tags": {},
        "reference": {"resource_id": uuid, "external_link": external_link(base_url, kind, link_uuid or uuid)},
    }


def guest_os(resources: dict) -> str:
    """v3 has no guest OS field; NGT reports one when installed."""
    ngt = _dict(_dict(resources.get("guest_tools")).get("nutanix_guest_tools"))
    return clean_str(ngt.get("guest_os_version"), 256)


def latest_utilization(stats: dict | None) -> dict:
    """The newest real (not -1) CPU and memory percentages from a VM's series."""
    out: dict[str, Any] = {}
    if not stats:
        return out
    latest_ts = 0
    for attr, key in (("hypervisor_cpu_usage_ppm", "cpu_percent"), ("memory_usage_ppm", "memory_percent")):
        points = [(t, v) for t, v in stats.get(attr, []) if v is not None and v >= 0]
        if points:
            t, v = max(points)
            out[key] = round(v / 10_000, 4)
            latest_ts = max(latest_ts, t)
    if latest_ts:
        out["as_of"] = _iso_utc(latest_ts)
    return out


@lru_cache(maxsize=256)
def _iso_utc(t_usec: int) -> str:
    """A stats time as ISO text (every VM of a run shares a few: formatted once each);
    "" for a time no calendar holds (Prism's answers are not trusted)."""
    try:
        return datetime.fromtimestamp(t_usec / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return ""


UTILIZATION_ATTRIBUTES = ("hypervisor_cpu_usage_ppm", "memory_usage_ppm")


def utilization_of(entity_result: Any) -> dict:
    """A VM's stats entity_result as Prism answered it -> its latest utilization."""
    return latest_utilization(parse_stats_entity(entity_result, UTILIZATION_ATTRIBUTES))


def normalize_vm(account: str, base_url: str, entity: dict, stats: dict | None = None) -> list[Resource]:
    """A VM and each of its DISK-type disks (CDROM and volume groups are not disks here).

    Fields come from ``status``, ``spec`` filling only what status lacks (listed in
    ``data.filled_from_spec``); see the module docstring."""
    uuid = entity_uuid(entity)
    status = _dict(entity.get("status"))
    spec = _dict(entity.get("spec"))
    filled: list[str] = []
    top = _StatusFirst(status, spec, filled)
    res = _StatusFirst(_dict(status.get("resources")), _dict(spec.get("resources")), filled)
    name = clean_str(top.get("name"), MAX_NAME)
    if not name:
        raise MalformedEntity("entity has no name")
    cluster = _ref(top.get("cluster_reference"))
    if not cluster["uuid"]:
        raise MalformedEntity("VM has no cluster_reference")
    status_res = res.status
    host = _ref(status_res.get("host_reference")) if status_res.get("host_reference") else {"uuid": "", "name": ""}
    power = clean_str(res.get("power_state"), 32).upper() or "UNKNOWN"
    sockets = max(0, _int(res.get("num_sockets"), 0))
    per_socket = max(0, _int(res.get("num_vcpus_per_socket"), 1))
    vcpus = sockets * per_socket if sockets * per_socket < MAX_COUNT else 0
    memory_mib = max(0, _int(res.get("memory_size_mib"), 0))
    memory_gib = round(memory_mib / 1024, 3)
    if not (vcpus and memory_mib):
        size_source = "unknown"
    elif any(k in filled for k in SIZE_KEYS):
        size_source = "spec"
    else:
        size_source = "status"
    meta = _dict(entity.get("metadata"))
    tags = category_tags(entity)

    disk_list = res.get("disk_list")
    disk_size_source = "spec" if "disk_list" in filled else "status"
    disks, vm_disks = [], []
    for d in _list(disk_list):
        d = _dict(d)
        props = _dict(d.get("device_properties"))
        dtype = clean_str(props.get("device_type"), 32).upper()
        addr = _dict(props.get("disk_address"))
        size_bytes = max(0, _int(d.get("disk_size_bytes"), _int(d.get("disk_size_mib")) * 1024 * 1024))
        summary: dict[str, Any] = {
            "uuid": clean_str(d.get("uuid"), 64),
            "device_type": dtype,
            "adapter_type": clean_str(addr.get("adapter_type"), 32),
            "device_index": _int(addr.get("device_index")),
            "size_gib": round(size_bytes / 1024 ** 3, 3),
            "source": _source_ref(d.get("data_source_reference")),
        }
        disks.append(summary)
        if dtype == "DISK" and summary["uuid"]:
            container = _ref(_dict(d.get("storage_config")).get("storage_container_reference"))
            vm_disks.append((summary, container))

    nics: list[dict] = []
    ips: list[str] = []
    for n in _list(res.get("nic_list")):
        n = _dict(n)
        nic_ips = nic_ip_addresses(n.get("ip_endpoint_list"))
        ips.extend(e["ip"] for e in nic_ips if not is_link_local(e["ip"]))
        subnet = _ref(n.get("subnet_reference"))
        nics.append({
            "uuid": clean_str(n.get("uuid"), 64),
            "mac_address": clean_str(n.get("mac_address"), 32),
            "subnet": subnet["name"],
            "subnet_uuid": subnet["uuid"],
            "ip_addresses": nic_ips,
            "is_connected": bool(n.get("is_connected", True)),
        })

    boot = _dict(res.get("boot_config"))
    gpus = [_gpu(g) for g in _list(res.get("gpu_list"))]
    vtpm = _vtpm(res.get("vtpm_config"))
    machine_type = clean_str(res.get("machine_type"), 32)
    protection_type = clean_str(res.get("protection_type"), 32)
    hypervisor_type = clean_str(res.get("hypervisor_type"), 32)
    threads = _int(res.get("num_threads_per_core"), 1)
    description = clean_str(top.get("description"), MAX_STR)

    vm = _base("vm", account, uuid, name, cluster["uuid"], base_url)
    vm.update({
        "instance_type": f"{vcpus}vCPU-{memory_gib:g}GiB" if size_source != "unknown" else "",
        "instance_size": float(vcpus) if size_source != "unknown" else 0.0,
        "ip_addresses": sorted(set(ips)),
        "tags": tags,
    })
    vm["data"] = {
        "power_state": power,
        "prism_state": clean_str(status.get("state"), 32).upper(),
        "prism_messages": prism_messages(status),
        "size_source": size_source,
        "size_known": size_source == "status",
        "filled_from_spec": sorted(set(filled)),
        "vcpus": vcpus,
        "num_sockets": sockets,
        "num_vcpus_per_socket": per_socket,
        "num_threads_per_core": threads,
        "memory_gib": memory_gib,
        "cluster": cluster,
        "host": host,
        "hypervisor_type": hypervisor_type,
        "guest_os": guest_os(status_res),
        "boot_type": clean_str(boot.get("boot_type"), 32).upper(),
        "machine_type": machine_type,
        "protection_type": protection_type,
        "vtpm": vtpm,
        "gpus": gpus,
        "disks": disks,
        "disk_total_gib": round(sum(s["size_gib"] for s, _ in vm_disks), 3),
        "nics": nics,
        "owner": _ref(meta.get("owner_reference")),
        "created_at": clean_str(meta.get("creation_time"), 64),
        "last_updated_at": clean_str(meta.get("last_update_time"), 64),
        "project": _ref(meta.get("project_reference"))["name"],
        "description": description,
        "utilization": latest_utilization(stats),
        "categories": dict(tags),
    }
    out = [vm]
    for summary, container in vm_disks:
        disk_name = clean_str(f"{name}-{summary['adapter_type'].lower() or 'disk'}{summary['device_index']}",
                              MAX_NAME)
        disk = _base("disk", account, summary["uuid"], disk_name, cluster["uuid"], base_url, link_uuid=uuid)
        disk["tags"] = tags
        disk["data"] = {
            "size_gib": summary["size_gib"],
            "size_source": disk_size_source,
            "size_known": disk_size_source == "status",
            "source": summary["source"],
            "adapter_type": summary["adapter_type"],
            "device_index": summary["device_index"],
            "storage_container": container,
            "vm": {"uuid": uuid, "name": name},
            "vm_power_state": power,
            "cluster": cluster,
            "categories": dict(tags),
        }
        out.append(disk)
    return out


def normalize_cluster(account: str, base_url: str, entity: dict) -> Resource:
    uuid = entity_uuid(entity)
    name = entity_name(entity)
    res = _dict(_dict(entity.get("status")).get("resources"))
    config = _dict(res.get("config"))
    network = _dict(res.get("network"))
    build = _dict(config.get("build"))
    nodes = [_dict(n) for n in _list(_dict(res.get("nodes")).get("hypervisor_server_list"))]
    c = _base("cluster", account, uuid, name, uuid, base_url)
    ext_ip = clean_str(network.get("external_ip"), 64)
    c["ip_addresses"] = [ext_ip] if ext_ip else []
    c["tags"] = category_tags(entity)
    c["data"] = {
        "aos_version": clean_str(build.get("version") or _dict(_dict(config.get("software_map")).get("NOS"))
                                 .get("version"), 64),
        "service_list": [clean_str(s, 64) for s in _list(config.get("service_list"))],
        "redundancy_factor": _int(config.get("redundancy_factor")),
        "timezone": clean_str(config.get("timezone"), 64),
        "operation_mode": clean_str(config.get("operation_mode"), 32),
        "arch": clean_str(config.get("cluster_arch"), 32),
        "external_ip": ext_ip,
        "num_nodes": len(nodes),
        "hypervisors": sorted({clean_str(n.get("type"), 32) for n in nodes if n.get("type")}),
        "hypervisor_versions": hypervisor_versions(nodes),
        "created_at": clean_str(_dict(entity.get("metadata")).get("creation_time"), 64),
        "categories": dict(c["tags"]),
    }
    return c


def hypervisor_versions(nodes: list[dict]) -> list[dict]:
    """The distinct (type, version) of a cluster's nodes; a node that reports no
    version (real 5.10-era answers hold one at 127.0.0.1) adds nothing."""
    found = {(clean_str(n.get("type"), 32), clean_str(n.get("version"), 128)) for n in nodes}
    return [{"type": t, "version": v} for t, v in sorted(found) if v]


def hypervisor_version(full_name: str) -> str:
    """"AHV el7.nutanix.20220304.462" -> "el7.nutanix.20220304.462" (the last word: v3
    hosts carry only the full name; the cluster's nodes list the same version text)."""
    words = full_name.split()
    return words[-1] if len(words) > 1 else full_name


def host_name(entity: dict, uuid: str) -> tuple[str, str]:
    """(name, where it came from): Prism's name, else the hypervisor IP, the
    controller VM IP, the serial number, the uuid; a host is never lost for its name."""
    status = _dict(entity.get("status"))
    res = _dict(status.get("resources"))
    for source, value in (("prism", status.get("name") or _dict(entity.get("spec")).get("name")),
                          ("hypervisor_ip", _dict(res.get("hypervisor")).get("ip")),
                          ("controller_vm_ip", _dict(res.get("controller_vm")).get("ip")),
                          ("serial_number", res.get("serial_number"))):
        name = clean_str(value, MAX_NAME)
        if name:
            return name, source
    return uuid, "uuid"


def normalize_host(account: str, base_url: str, entity: dict) -> Resource:
    uuid = entity_uuid(entity)
    name, name_source = host_name(entity, uuid)
    status = _dict(entity.get("status"))
    res = _dict(status.get("resources"))
    cluster = _ref(status.get("cluster_reference"))
    hyper = _dict(res.get("hypervisor"))
    block = _dict(res.get("block"))
    h = _base("host", account, uuid, name, cluster["uuid"], base_url)
    ip = clean_str(hyper.get("ip"), 64)
    h["ip_addresses"] = [ip] if ip else []
    cores = _int(res.get("num_cpu_cores"))
    mem_mib = _int(res.get("memory_capacity_mib"))
    h["instance_type"] = clean_str(block.get("block_model"), 128)
    h["instance_size"] = float(cores)
    h["tags"] = category_tags(entity)
    h["data"] = {
        "cluster": cluster,
        "serial_number": clean_str(res.get("serial_number"), 128),
        "num_cpu_cores": cores,
        "num_cpu_sockets": _int(res.get("num_cpu_sockets")),
        "cpu_capacity_ghz": round(_int(res.get("cpu_capacity_hz")) / 1e9, 3),
        "cpu_model": clean_str(res.get("cpu_model"), 128),
        "memory_gib": round(mem_mib / 1024, 3),
        "name_source": name_source,
        "hypervisor": clean_str(hyper.get("hypervisor_full_name"), 128),
        "hypervisor_version": hypervisor_version(clean_str(hyper.get("hypervisor_full_name"), 128)),
        "num_vms": _int(hyper.get("num_vms")),
        "block_model": clean_str(block.get("block_model"), 128),
        "block_serial": clean_str(block.get("block_serial_number"), 128),
        "host_type": clean_str(res.get("host_type"), 64),
        "categories": dict(h["tags"]),
    }
    return h


def dead_letter(stage: str, account: str, kind: str, reason: str, ident: str = "") -> DeadLetter:
    return {"stage": stage, "account": account, "kind": kind, "id": clean_str(ident, 128),
            "reason": clean_str(reason, 500)}


class NormalizeVm(beam.DoFn):
    """VmWithStats ((account, uuid), VmRead(base_url, entity, stats entity_result | None))
    -> the VM resource, with its latest utilization, and its disk resources; malformed
    VMs to DEAD_LETTER."""

    def process(self, item: VmWithStats) -> Iterable[Resource | pvalue.TaggedOutput]:
        (account, uuid), (base_url, entity, stats) = item
        yield from self._normalize(account, uuid, base_url, entity, stats, None)

    @staticmethod
    def _normalize(account: str, uuid: str, base_url: str, entity: Any, stats: Any,
                   utilization: dict | None) -> Iterable[Resource | pvalue.TaggedOutput]:
        series = None if stats is None else parse_stats_entity(stats, UTILIZATION_ATTRIBUTES)
        try:
            resources = normalize_vm(account, base_url, entity, series)
        except MalformedEntity as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter("normalize", account, "vm", str(exc), uuid))
            return
        util = utilization.get((account, uuid)) if utilization is not None and series is None else None
        if util:
            resources[0]["data"]["utilization"] = util
        yield from resources


class NormalizeVmWithUtilization(NormalizeVm):
    """NormalizeVm for sources that hold VMs and their stats apart (snapshots):
    ``utilization``, a side input, is every VM's latest-utilization summary (a few
    hundred bytes per VM), used where the element has no stats.

    A class of its own: a ``process`` with a default argument makes Beam invoke it
    the slow way for every element, side input or not."""

    def process(self, item: VmWithStats, utilization: dict) -> Iterable:  # type: ignore[override]
        (account, uuid), (base_url, entity, stats) = item
        yield from self._normalize(account, uuid, base_url, entity, stats, utilization)


class NormalizeInfra(beam.DoFn):
    """InfraEntity ((account, kind, uuid), InfraRead(base_url, entity)) -> resources (the
    Prism Central cluster is skipped); malformed ones to DEAD_LETTER."""

    def process(self, item: InfraEntity) -> Iterable[Resource | pvalue.TaggedOutput]:
        (account, kind, uuid), (base_url, entity) = item
        try:
            if kind == "cluster":
                if not is_prism_central(entity):
                    yield normalize_cluster(account, base_url, entity)
            else:
                yield normalize_host(account, base_url, entity)
        except MalformedEntity as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter("normalize", account, kind, str(exc), uuid))
