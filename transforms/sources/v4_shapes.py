"""v4 answers -> the v3 form the rest of the pipeline reads.

Why one form: normalize, cost, metrics, the snapshot and its replay then stay one
code path, and a VM read through v4 gives the very resources, costs and metric
points a v3 read gives (tests/integration/test_prism_v4_read.py compares them).
v4 references are ids only, so each account's small lists (clusters, hosts,
subnets, storage containers, categories) are read first into a ``Lookups``; VMs
are then converted page by page as they stream, never held together.

What v4 does not carry, and the v3 form therefore lacks (documented in README,
"Prism API: v3 or v4"): the VM's project name and its owner's name (v4.0 has
extIds only, and reading IAM/projects is out of scope), a cluster's creation
time, and v3's intent ``state`` (a v4 entity is what exists: ``COMPLETE``).
Field names: the recordings in ``../shared/fixtures/prism/v4_manageiq`` and the
SDK models (ntnx-vmm-py-client 4.3.2 ``Vm``, ``Disk``, ``Nic``, ``GuestTools``;
ntnx-clustermgmt-py-client 4.3.2 ``Host``, ``Cluster``).
"""
from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any, Iterable, NamedTuple

_FRACTION = re.compile(r"\.\d+(?=Z$|[+-]\d\d:\d\d$)")

MIB = 1024 * 1024
# v3 groups attribute <- v4 VmStatsTuple field, for the eight series the read keeps
STATS_FIELDS = {
    "hypervisor_cpu_usage_ppm": "hypervisorCpuUsagePpm",
    "memory_usage_ppm": "memoryUsagePpm",
    "controller_num_read_iops": "controllerNumReadIops",
    "controller_num_write_iops": "controllerNumWriteIops",
    "controller_read_io_bandwidth_kBps": "controllerReadIoBandwidthKbps",
    "controller_write_io_bandwidth_kBps": "controllerWriteIoBandwidthKbps",
    "hypervisor_num_received_bytes": "hypervisorNumReceivedBytes",
    "hypervisor_num_transmitted_bytes": "hypervisorNumTransmittedBytes",
}


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def _ipv4(value: Any) -> str:
    """``{ipv4: {value}}`` (an IPAddress) or ``{value}`` (an IPv4Address) -> the text."""
    v = _d(value)
    inner = _d(v.get("ipv4")) or v
    text = inner.get("value")
    return text if isinstance(text, str) else ""


class HostInfo(NamedTuple):
    name: str
    cluster_uuid: str
    ip: str
    hypervisor_type: str
    version: str


class Lookups(NamedTuple):
    """One account's names by extId: a few hundred entries, whatever the number of VMs."""

    clusters: dict  # extId -> name
    hosts: dict  # extId -> HostInfo
    subnets: dict  # extId -> name
    containers: dict  # extId -> name
    categories: dict  # extId -> (key, value)

    @classmethod
    def build(cls, clusters: Iterable[dict], hosts: Iterable[dict], subnets: Iterable[dict],
              containers: Iterable[dict], categories: Iterable[dict]) -> "Lookups":
        by_host = {}
        for h in hosts:
            if not isinstance(h, dict) or not isinstance(h.get("extId"), str):
                continue
            hyp = _d(h.get("hypervisor"))
            full: str = hyp["fullName"] if isinstance(hyp.get("fullName"), str) else ""
            words = full.split()
            by_host[h["extId"]] = HostInfo(
                h["hostName"] if isinstance(h.get("hostName"), str) else "",
                str(_d(h.get("cluster")).get("uuid") or _d(h.get("cluster")).get("extId") or ""),
                _ipv4(hyp.get("externalAddress")), str(hyp.get("type") or (words[0] if words else "")),
                words[-1] if len(words) > 1 else full)
        return cls(
            clusters={c["extId"]: str(c.get("name") or "") for c in clusters if _has_id(c)},
            hosts=by_host,
            subnets={s["extId"]: str(s.get("name") or "") for s in subnets if _has_id(s)},
            containers={_container_id(c): str(c.get("name") or "") for c in containers
                        if isinstance(c, dict) and _container_id(c)},
            categories={c["extId"]: (str(c.get("key") or ""), str(c.get("value") or ""))
                        for c in categories if _has_id(c)},
        )


def _has_id(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("extId"), str) and bool(value["extId"])


def _container_id(c: dict) -> str:
    value = c.get("containerExtId") or c.get("extId")
    return value if isinstance(value, str) else ""


def _ref(kind: str, uuid: Any, names: dict) -> dict:
    uuid = uuid if isinstance(uuid, str) else ""
    name = names.get(uuid, "")
    return {"kind": kind, "uuid": uuid, "name": name.name if isinstance(name, HostInfo) else name}


def _categories(refs: Any, lookups: Lookups) -> dict:
    """Category extIds -> v3's ``{key: value}`` (a key with several values keeps the first)."""
    out: dict[str, str] = {}
    for ref in _l(refs):
        pair = lookups.categories.get(_d(ref).get("extId"))
        if pair and pair[0] and pair[0] not in out:
            out[pair[0]] = pair[1]
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ VMs
def v3_time(text: str) -> str:
    """A v4 time as v3 writes the same instant: v4 answers microseconds ("2025-04-28T14:27:39.495755Z"),
    v3 whole seconds ("2025-06-07T18:23:52Z", the recordings), so records do not change with the API."""
    return _FRACTION.sub("", text, count=1)


def vm_to_v3(vm: dict, lookups: Lookups) -> dict:
    """A vmm.v4.ahv.config.Vm -> a v3 ``vm`` entity with the names joined."""
    if not isinstance(vm, dict):
        return {}  # normalize reports it (no metadata.uuid)
    res: dict[str, Any] = {"hypervisor_type": "AHV"}  # the ahv namespace lists AHV VMs only
    for v3_key, v4_key in (("power_state", "powerState"), ("num_sockets", "numSockets"),
                           ("num_vcpus_per_socket", "numCoresPerSocket"),
                           ("num_threads_per_core", "numThreadsPerCore"), ("machine_type", "machineType"),
                           ("protection_type", "protectionType")):
        if vm.get(v4_key) is not None:
            res[v3_key] = vm[v4_key]
    if isinstance(vm.get("memorySizeBytes"), int) and not isinstance(vm["memorySizeBytes"], bool):
        res["memory_size_mib"] = vm["memorySizeBytes"] // MIB
    host_id = _d(vm.get("host")).get("extId")
    if host_id:
        res["host_reference"] = _ref("host", host_id, lookups.hosts)
    boot = _d(vm.get("bootConfig"))
    if boot:
        kind = str(boot.get("$objectType", ""))
        uefi = kind.endswith("UefiBoot") or "isSecureBootEnabled" in boot or "nvramDevice" in boot
        res["boot_config"] = {"boot_type": ("SECURE_BOOT" if boot.get("isSecureBootEnabled") else "UEFI")
                              if uefi else "LEGACY"}
    vtpm = _d(vm.get("vtpmConfig"))
    if vtpm:
        res["vtpm_config"] = {"vtpm_enabled": vtpm.get("isVtpmEnabled") is True,
                              **({"version": vtpm["version"]} if vtpm.get("version") else {})}
    res["gpu_list"] = [_gpu(g) for g in _l(vm.get("gpus"))]
    tools = _d(vm.get("guestTools"))
    if tools.get("guestOsVersion"):
        res["guest_tools"] = {"nutanix_guest_tools": {"guest_os_version": tools["guestOsVersion"]}}
    res["disk_list"] = ([_disk(d, "DISK", lookups) for d in _l(vm.get("disks"))]
                        + [_disk(d, "CDROM", lookups) for d in _l(vm.get("cdRoms"))])
    res["nic_list"] = [_nic(n, lookups) for n in _l(vm.get("nics"))]
    owner = _d(_d(vm.get("ownershipInfo")).get("owner")).get("extId")
    metadata: dict[str, Any] = {"uuid": vm.get("extId"), "kind": "vm",
                                "categories": _categories(vm.get("categories"), lookups)}
    if vm.get("createTime"):
        metadata["creation_time"] = v3_time(vm["createTime"])
    if vm.get("updateTime"):
        metadata["last_update_time"] = v3_time(vm["updateTime"])
    if owner:
        metadata["owner_reference"] = {"kind": "user", "uuid": owner}
    status = {"name": vm.get("name"), "description": vm.get("description", ""), "state": "COMPLETE",
              "cluster_reference": _ref("cluster", _d(vm.get("cluster")).get("extId"), lookups.clusters),
              "resources": res}
    return {"metadata": metadata, "status": status}


def _gpu(g: Any) -> dict:
    g = _d(g)
    size = g.get("frameBufferSizeBytes")
    return {"vendor": g.get("vendor"), "mode": g.get("mode"), "device_id": g.get("deviceId"),
            "name": g.get("name"), "uuid": g.get("extId"),
            "frame_buffer_size_mib": size // MIB if isinstance(size, int) and not isinstance(size, bool) else 0,
            "guest_driver_version": g.get("guestDriverVersion")}


def _disk(d: Any, device_type: str, lookups: Lookups) -> dict:
    d = _d(d)
    backing = _d(d.get("backingInfo"))
    addr = _d(d.get("diskAddress"))
    out: dict[str, Any] = {
        "uuid": d.get("extId") or backing.get("diskExtId"),
        "device_properties": {"device_type": device_type,
                              "disk_address": {"adapter_type": addr.get("busType"), "device_index": addr.get("index")}},
    }
    if backing.get("diskSizeBytes") is not None:
        out["disk_size_bytes"] = backing["diskSizeBytes"]
    container = _d(backing.get("storageContainer")).get("extId")
    if container:
        out["storage_config"] = {"storage_container_reference": _ref("storage_container", container,
                                                                     lookups.containers)}
    source = _d(_d(backing.get("dataSource")).get("reference"))
    if source.get("imageExtId"):
        out["data_source_reference"] = {"kind": "image", "uuid": source["imageExtId"]}
    elif source.get("diskExtId"):
        out["data_source_reference"] = {"kind": "vm_disk", "uuid": source["diskExtId"]}
    return out


def _nic(n: Any, lookups: Lookups) -> dict:
    n = _d(n)
    backing, info = _d(n.get("backingInfo")), _d(n.get("networkInfo"))
    ips = []
    config = _d(info.get("ipv4Config"))
    for addr in [config.get("ipAddress")] + _l(config.get("secondaryIpAddressList")):
        if _ipv4(addr):
            ips.append({"ip": _ipv4(addr), "type": "ASSIGNED"})
    for addr in _l(_d(info.get("ipv4Info")).get("learnedIpAddresses")):
        if _ipv4(addr):
            ips.append({"ip": _ipv4(addr), "type": "LEARNED"})
    return {"uuid": n.get("extId"), "mac_address": backing.get("macAddress"),
            "is_connected": backing.get("isConnected", True), "ip_endpoint_list": ips,
            "subnet_reference": _ref("subnet", _d(info.get("subnet")).get("extId"), lookups.subnets)}


# ------------------------------------------------------------------ clusters and hosts
def cluster_to_v3(c: dict, lookups: Lookups) -> dict:
    """A clustermgmt.v4.config.Cluster -> a v3 ``cluster`` entity; its nodes' hypervisor
    versions come from the hosts (v4 clusters do not carry them)."""
    if not isinstance(c, dict):
        return {}
    config, network = _d(c.get("config")), _d(c.get("network"))
    software = {s.get("softwareType"): {"version": s.get("version")} for s in _l(config.get("clusterSoftwareMap"))
                if isinstance(s, dict) and s.get("softwareType")}
    nodes = [{"ip": h.ip, "type": h.hypervisor_type, "version": h.version}
             for h in lookups.hosts.values() if h.cluster_uuid == c.get("extId")]
    if not nodes:  # no hosts listed (Prism Central's own): the node list, types from the config
        types = [t for t in _l(config.get("hypervisorTypes")) if t != "$UNKNOWN"]
        nodes = [{"ip": _ipv4(_d(n).get("hostIp")), "type": types[0] if types else "", "version": ""}
                 for n in _l(_d(c.get("nodes")).get("nodeList"))] if types else []
    ext_ip = _ipv4(network.get("externalAddress"))
    resources = {
        "config": {"service_list": list(_l(config.get("clusterFunction"))),
                   "build": {"version": _d(config.get("buildInfo")).get("version")},
                   "software_map": software, "redundancy_factor": config.get("redundancyFactor"),
                   "timezone": config.get("timezone"), "operation_mode": config.get("operationMode"),
                   "cluster_arch": config.get("clusterArch")},
        "network": {"external_ip": ext_ip} if ext_ip else {},
        "nodes": {"hypervisor_server_list": nodes},
    }
    return {"metadata": {"uuid": c.get("extId"), "kind": "cluster",
                         "categories": _categories(c.get("categories"), lookups)},
            "status": {"name": c.get("name"), "state": "COMPLETE", "resources": resources}}


def host_to_v3(h: dict, lookups: Lookups) -> dict:
    """A clustermgmt.v4.config.Host -> a v3 ``host`` entity."""
    if not isinstance(h, dict):
        return {}
    hyp, cluster = _d(h.get("hypervisor")), _d(h.get("cluster"))
    cluster_uuid = cluster.get("uuid") or cluster.get("extId")
    cores = h.get("numberOfCpuCores")
    capacity = h.get("cpuCapacityHz")
    if capacity is None and isinstance(h.get("cpuFrequencyHz"), int) and isinstance(cores, int):
        capacity = h["cpuFrequencyHz"] * cores  # older answers (v4.0 recordings): frequency only
    mem = h.get("memorySizeBytes")
    res: dict[str, Any] = {
        "serial_number": h.get("nodeSerial"), "num_cpu_cores": cores,
        "num_cpu_sockets": h.get("numberOfCpuSockets"), "cpu_capacity_hz": capacity,
        "cpu_model": h.get("cpuModel"),
        "memory_capacity_mib": mem // MIB if isinstance(mem, int) and not isinstance(mem, bool) else None,
        "hypervisor": {"hypervisor_full_name": hyp.get("fullName"), "ip": _ipv4(hyp.get("externalAddress")),
                       "num_vms": hyp.get("numberOfVms")},
        "block": {"block_serial_number": h.get("blockSerial"), "block_model": h.get("blockModel")},
        "host_type": h.get("hostType"),
        "controller_vm": {"ip": _ipv4(_d(h.get("controllerVm")).get("externalAddress"))},
    }
    cluster_name = cluster.get("name") or lookups.clusters.get(cluster_uuid, "")
    status: dict[str, Any] = {"state": "COMPLETE", "resources": res,
                              "cluster_reference": {"kind": "cluster", "uuid": cluster_uuid, "name": cluster_name}}
    if h.get("hostName"):
        status["name"] = h["hostName"]
    return {"metadata": {"uuid": h.get("extId"), "kind": "host", "categories": {}}, "status": status}


# ------------------------------------------------------------------ stats
@lru_cache(maxsize=4096)
def _usec(timestamp: str) -> int | None:
    """An RFC 3339 stats timestamp -> epoch microseconds (every VM of a run shares a few)."""
    try:
        dt = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if dt.tzinfo is None:
        return None
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def stats_to_v3(vm_stats: dict) -> tuple[str, dict] | None:
    """A vmm.v4.ahv.stats.VmStats -> (extId, a v3 groups entity_result of the eight series).

    Tuples without a value for a field (the first ones carry only metadata; a VM off has
    none) add no point, as v3's "-1" adds none."""
    if not isinstance(vm_stats, dict) or not isinstance(vm_stats.get("extId"), str):
        return None
    series: dict[str, list] = {attr: [] for attr in STATS_FIELDS}
    for point in _l(vm_stats.get("stats")):
        if not isinstance(point, dict):
            continue
        t = _usec(point.get("timestamp")) if isinstance(point.get("timestamp"), str) else None
        if t is None:
            continue
        for attr, field in STATS_FIELDS.items():
            value = point.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series[attr].append({"values": [str(value)], "time": t})
    return vm_stats["extId"], {"entity_id": vm_stats["extId"],
                               "data": [{"name": attr, "values": values} for attr, values in series.items()]}
