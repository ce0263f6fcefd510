"""Prism Central's v4 API over the same deterministic fleet as the v3 emulator.

Every v4 entity is made from the v3 entity of the same fleet (its uuid is the
extId), so a VM read through v4 is the VM read through v3: only the shape
differs. Shapes follow the real v4.0 recordings
(``../shared/fixtures/prism/v4_manageiq``: vmm ``ahv/config/vms``, clustermgmt
``config/clusters|hosts|storage-containers``; ``v4_datadog_stats``: the VM stats)
and the field names of the official SDK models (ntnx-vmm-py-client 4.3.2
``models/vmm/v4/ahv/config/Vm.py``, ``GuestTools.py``, ``UefiBoot.py``;
ntnx-clustermgmt-py-client 4.3.2 ``models/clustermgmt/v4/config/Host.py``,
``Cluster.py``).

What v4 does differently, and the emulator with it:

- GET with OData options: ``$page`` (0-based), ``$limit`` 1..100 (default 50;
  above 100 is a 400, as the SDKs' validation and the server say), ``$filter``,
  ``$select``; envelope ``{data, metadata{totalAvailableResults, flags, links}}``;
  an empty page comes without ``data`` (the SDK models it optional);
- references are extIds only (cluster, host, categories, subnets, storage
  containers): the names come from their own lists;
- ``OPTIONS /api/vmm/unversioned/info`` answers ``{"data": "<highest version>"}``
  (what ntnx_vmm_py_client ``ApiClient.negotiate_version`` reads);
- errors are ``{"data": {"error": [{code, message, errorGroup, ...}]}}`` (the
  SDKs' ``vmm.v4.error.ErrorResponse``); every answer carries ``X-Ratelimit-*``.
"""
from __future__ import annotations

import re
import uuid as uuidlib
import zlib
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qs, unquote

import orjson

from .fleet import COST_CENTERS, ENVIRONMENTS, PROJECTS, PrismCentralFleet

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
# the versions a Prism Central serves: pc.2024.3 serves v4.0, pc.7.3 v4.0 and v4.1 (prism.md)
KNOWN_VERSIONS = ("v4.0", "v4.1", "v4.2", "v4.3")
_R4 = {"$fv": "v4.r0"}
_R1 = {"$fv": "v1.r0"}
_NS = uuidlib.UUID("6f1d3c1e-8a3b-4c52-9a1e-3f6c1f0b7a11")
_PATH = re.compile(r"^/api/(vmm|clustermgmt|prism|networking)/(v4\.\d+)/(.+?)/?$")
_FILTER_EQ = re.compile(r"extId\s+eq\s+'([^']*)'")
_FILTER_IN = re.compile(r"extId\s+in\s+\(([^)]*)\)")
# v3 groups attribute -> v4 VmStatsTuple field (ntnx-vmm-py-client models/vmm/v4/ahv/stats/VmStatsTuple.py)
STATS_FIELDS = {
    "hypervisor_cpu_usage_ppm": "hypervisorCpuUsagePpm",
    "memory_usage_ppm": "memoryUsagePpm",
    "controller_num_iops": "controllerNumIops",
    "controller_num_read_iops": "controllerNumReadIops",
    "controller_num_write_iops": "controllerNumWriteIops",
    "controller_read_io_bandwidth_kBps": "controllerReadIoBandwidthKbps",
    "controller_write_io_bandwidth_kBps": "controllerWriteIoBandwidthKbps",
    "controller_avg_io_latency_usecs": "controllerAvgIoLatencyMicros",
    "hypervisor_num_received_bytes": "hypervisorNumReceivedBytes",
    "hypervisor_num_transmitted_bytes": "hypervisorNumTransmittedBytes",
}


class V4Error(Exception):
    """Rendered as the v4 error envelope."""

    def __init__(self, status: int, message: str, code: str = "VMM-20005", group: str = "INVALID_ARGUMENT"):
        super().__init__(message)
        self.status, self.message, self.code, self.group = status, message, code, group


def v4_error_body(status: int, message: str, code: str, group: str, namespace: str = "vmm") -> bytes:
    return orjson.dumps({
        "$reserved": _R4, "$objectType": f"{namespace}.v4.error.ErrorResponse",
        "data": {"$objectType": f"{namespace}.v4.error.ErrorResponse", "error": [{
            "$objectType": f"{namespace}.v4.error.AppMessage", "code": code, "message": message,
            "severity": "ERROR", "errorGroup": group, "locale": "en_US",
            "argumentsMap": {}}]},
        "metadata": {"flags": [_flag("hasError", True), _flag("isPaginated", False)]}})


def ext_id(*parts: str) -> str:
    """A stable extId for what v3 names but gives no uuid (a category key/value pair)."""
    return str(uuidlib.uuid5(_NS, ":".join(parts)))


def _flag(name: str, value: bool) -> dict:
    return {"$reserved": _R1, "$objectType": "common.v1.config.Flag", "name": name, "value": value}


def _ip(value: str) -> dict:
    return {"ipv4": {"$reserved": _R1, "$objectType": "common.v1.config.IPv4Address", "value": value,
                     "prefixLength": 32}, "$reserved": _R1, "$objectType": "common.v1.config.IPAddress"}


def _v4_time(text: str, salt: str) -> str:
    """A fleet time (v3's whole seconds) as v4 answers it: with microseconds (the v4.0 recordings have
    "2025-04-28T14:27:39.495755Z"), the same instant truncated; the fraction is fixed per entity."""
    if not text.endswith("Z") or "." in text:
        return text
    return f"{text[:-1]}.{zlib.crc32(salt.encode()) % 1_000_000:06d}Z"


def _usec_iso(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, name: str) -> int:
    """An OData time option (RFC 3339) -> epoch milliseconds; a bad one is a 400."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise V4Error(400, f"{name} is not an RFC 3339 time: {text[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


# ------------------------------------------------------------------ v3 entity -> v4 entity
def vm_to_v4(v3: dict) -> dict:
    """A fleet VM (v3 shape) as vmm.v4.ahv.config.Vm."""
    meta, status = v3["metadata"], v3["status"]
    res = status.get("resources") or {}
    out: dict[str, Any] = {
        "$reserved": _R4, "$objectType": "vmm.v4.ahv.config.Vm",
        "extId": meta["uuid"], "createTime": _v4_time(meta["creation_time"], meta["uuid"]),
        "updateTime": _v4_time(meta["last_update_time"], meta["uuid"] + "/update"),
        "name": status.get("name") or v3["spec"]["name"],
        "numSockets": res.get("num_sockets"), "numCoresPerSocket": res.get("num_vcpus_per_socket"),
        "numThreadsPerCore": res.get("num_threads_per_core"), "numNumaNodes": 0,
        "memorySizeBytes": res["memory_size_mib"] * 1024 * 1024 if "memory_size_mib" in res else None,
        "isVcpuHardPinningEnabled": False, "isCpuPassthroughEnabled": False,
        "isMemoryOvercommitEnabled": False, "isGpuConsoleEnabled": False, "isCpuHotplugEnabled": True,
        "isScsiControllerEnabled": True, "generationUuid": res.get("generation_uuid"),
        "biosUuid": res.get("bios_uuid"),
        "ownershipInfo": {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.OwnershipInfo",
                          "owner": {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.OwnerReference",
                                    "extId": meta["owner_reference"]["uuid"]}},
        "cluster": {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.ClusterReference",
                    "extId": status["cluster_reference"]["uuid"]},
        "hardwareClockTimezone": "UTC", "isBrandingEnabled": True, "isVgaConsoleEnabled": True,
        "machineType": res.get("machine_type"), "powerState": res.get("power_state"),
        "isAgentVm": False, "protectionType": res.get("protection_type"),
    }
    out = {k: v for k, v in out.items() if v is not None}
    if res.get("host_reference"):
        out["host"] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.HostReference",
                       "extId": res["host_reference"]["uuid"]}
    cats = meta.get("categories") or {}
    if cats:
        out["categories"] = [{"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.CategoryReference",
                              "extId": ext_id("category", k, v)} for k, v in sorted(cats.items())]
    boot = res.get("boot_config") or {}
    order = boot.get("boot_device_order_list", [])
    if boot.get("boot_type") in ("UEFI", "SECURE_BOOT"):
        out["bootConfig"] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.UefiBoot",
                             "isSecureBootEnabled": boot["boot_type"] == "SECURE_BOOT", "bootOrder": order}
    elif boot:
        out["bootConfig"] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.LegacyBoot", "bootOrder": order}
    vtpm = res.get("vtpm_config") or {}
    out["vtpmConfig"] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.VtpmConfig",
                         "isVtpmEnabled": vtpm.get("vtpm_enabled") is True,
                         **({"version": vtpm["version"]} if vtpm.get("version") else {})}
    if res.get("gpu_list"):
        out["gpus"] = [{"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.Gpu", "mode": g.get("mode"),
                        "deviceId": g.get("device_id"), "vendor": g.get("vendor"), "name": g.get("name", ""),
                        "extId": g.get("uuid", ""),
                        "frameBufferSizeBytes": g.get("frame_buffer_size_mib", 0) * 1024 * 1024,
                        "guestDriverVersion": g.get("guest_driver_version", ""), "fraction": g.get("fraction")}
                       for g in res["gpu_list"]]
    ngt = (res.get("guest_tools") or {}).get("nutanix_guest_tools")
    if ngt:
        out["guestTools"] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.GuestTools",
                             "version": ngt.get("version"), "isInstalled": ngt.get("ngt_state") == "INSTALLED",
                             "isEnabled": ngt.get("state") == "ENABLED", "isIsoInserted": False,
                             "availableVersion": ngt.get("available_version"),
                             "guestOsVersion": ngt.get("guest_os_version"), "isReachable": ngt.get("is_reachable"),
                             "isVssSnapshotCapable": ngt.get("vss_snapshot_capable"),
                             "isVmMobilityDriversInstalled": ngt.get("vm_mobility_drivers_installed"),
                             "capabilities": ngt.get("enabled_capability_list", [])}
    disks, cdroms = [], []
    for d in res.get("disk_list", []):
        props = d.get("device_properties", {})
        addr = props.get("disk_address", {})
        backing: dict[str, Any] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.VmDisk",
                                   "diskExtId": d.get("uuid"), "isMigrationInProgress": False}
        if "disk_size_bytes" in d:
            backing["diskSizeBytes"] = d["disk_size_bytes"]
        container = (d.get("storage_config") or {}).get("storage_container_reference")
        if container:
            backing["storageContainer"] = {"$reserved": _R4,
                                           "$objectType": "vmm.v4.ahv.config.VmDiskContainerReference",
                                           "extId": container["uuid"]}
        source = d.get("data_source_reference")
        if source:
            backing["dataSource"] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.DataSource",
                                     "reference": {"$reserved": _R4,
                                                   "$objectType": "vmm.v4.ahv.config.ImageReference",
                                                   "imageExtId": source["uuid"]}}
        item = {"$reserved": _R4, "extId": d.get("uuid"),
                "diskAddress": {"$reserved": _R4, "busType": addr.get("adapter_type"),
                                "index": addr.get("device_index")}, "backingInfo": backing}
        if props.get("device_type") == "CDROM":
            item.update({"$objectType": "vmm.v4.ahv.config.CdRom", "isoType": "OTHER"})
            item["diskAddress"]["$objectType"] = "vmm.v4.ahv.config.CdRomAddress"
            cdroms.append(item)
        else:
            item["$objectType"] = "vmm.v4.ahv.config.Disk"
            item["diskAddress"]["$objectType"] = "vmm.v4.ahv.config.DiskAddress"
            disks.append(item)
    out["disks"] = disks
    if cdroms:  # the recordings leave cdRoms (and an empty description) out
        out["cdRoms"] = cdroms
    if status.get("description"):
        out["description"] = status["description"]
    out["nics"] = [_nic_to_v4(n) for n in res.get("nic_list", [])]
    return out


def _nic_to_v4(n: dict) -> dict:
    ips = n.get("ip_endpoint_list", [])
    assigned = [e["ip"] for e in ips if e.get("type") == "ASSIGNED" and ":" not in e["ip"]]
    learned = [e["ip"] for e in ips if e.get("type") != "ASSIGNED" and ":" not in e["ip"]]
    info: dict[str, Any] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.NicNetworkInfo",
                            "nicType": n.get("nic_type", "NORMAL_NIC"),
                            "subnet": {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.SubnetReference",
                                       "extId": n["subnet_reference"]["uuid"]},
                            "vlanMode": n.get("vlan_mode", "ACCESS")}
    if assigned:
        info["ipv4Config"] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.Ipv4Config",
                              "ipAddress": _ip(assigned[0])["ipv4"],
                              **({"secondaryIpAddressList": [_ip(a)["ipv4"] for a in assigned[1:]]}
                                 if assigned[1:] else {})}
    if learned:
        info["ipv4Info"] = {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.Ipv4Info",
                            "learnedIpAddresses": [_ip(a)["ipv4"] for a in learned]}
    return {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.Nic", "extId": n.get("uuid"),
            "backingInfo": {"$reserved": _R4, "$objectType": "vmm.v4.ahv.config.EmulatedNic",
                            "macAddress": n.get("mac_address"), "isConnected": n.get("is_connected", True),
                            "numQueues": 1},  # no model: none of the recorded nics has one
            "networkInfo": info}


def cluster_to_v4(v3: dict) -> dict:
    """A fleet cluster (v3 shape) as clustermgmt.v4.config.Cluster."""
    res = v3["status"]["resources"]
    config, network = res["config"], res["network"]
    build = config.get("build", {})
    is_pc = "PRISM_CENTRAL" in config.get("service_list", [])
    nodes = res.get("nodes", {}).get("hypervisor_server_list", [])
    out: dict[str, Any] = {
        "$reserved": _R4, "$objectType": "clustermgmt.v4.config.Cluster",
        "extId": v3["metadata"]["uuid"], "name": v3["status"]["name"],
        "nodes": {"$reserved": _R4, "$objectType": "clustermgmt.v4.config.NodeReference",
                  "numberOfNodes": max(1, len(nodes)),
                  "nodeList": [{"$reserved": _R4, "$objectType": "clustermgmt.v4.config.NodeListItemReference",
                                "hostIp": _ip(n["ip"])} for n in nodes]},
        "config": {
            "$reserved": _R4, "$objectType": "clustermgmt.v4.config.ClusterConfigReference",
            "hypervisorTypes": ["$UNKNOWN"] if is_pc else sorted({n["type"] for n in nodes}),
            "timezone": config.get("timezone"),
            "clusterSoftwareMap": [{"$reserved": _R4, "$objectType": "clustermgmt.v4.config.SoftwareMapReference",
                                    "softwareType": k, "version": v["version"]}
                                   for k, v in config.get("software_map", {}).items()],
            "isAvailable": config.get("is_available", True),
            "buildInfo": {"$reserved": _R4, "$objectType": "clustermgmt.v4.config.BuildReference",
                          "buildType": build.get("build_type"), "version": build.get("version"),
                          "fullVersion": build.get("full_version"), "commitId": build.get("commit_id"),
                          "shortCommitId": build.get("short_commit_id")},
            "clusterFunction": list(config.get("service_list", [])),
            "redundancyFactor": config.get("redundancy_factor"), "clusterArch": config.get("cluster_arch"),
            "operationMode": config.get("operation_mode")},
        "network": {"$reserved": _R4, "$objectType": "clustermgmt.v4.config.ClusterNetworkReference",
                    "externalSubnet": network.get("external_subnet"),
                    "internalSubnet": network.get("internal_subnet"),
                    "externalAddress": _ip(network["external_ip"]) if network.get("external_ip") else {},
                    "ntpServerIpList": [{"fqdn": {"value": s}} for s in network.get("ntp_server_ip_list", [])],
                    "nameServerIpList": [_ip(s) for s in network.get("name_server_ip_list", [])]},
        "upgradeStatus": "SUCCEEDED",
    }
    if not is_pc:
        out["vmCount"] = 0
    return out


def host_to_v4(v3: dict) -> dict:
    """A fleet host (v3 shape) as clustermgmt.v4.config.Host."""
    status = v3["status"]
    res = status["resources"]
    hyper, block = res["hypervisor"], res["block"]
    full = hyper["hypervisor_full_name"]
    out: dict[str, Any] = {
        "$reserved": _R4, "$objectType": "clustermgmt.v4.config.Host", "extId": v3["metadata"]["uuid"],
        "hostType": res.get("host_type"),
        "hypervisor": {"$reserved": _R4, "$objectType": "clustermgmt.v4.config.HypervisorReference",
                       "externalAddress": _ip(hyper["ip"]), "userName": "root", "fullName": full,
                       "type": full.split()[0], "numberOfVms": hyper.get("num_vms", 0),
                       "state": "ACROPOLIS_NORMAL", "acropolisConnectionState": "CONNECTED"},
        "cluster": {"$reserved": _R4, "$objectType": "clustermgmt.v4.config.ClusterReference",
                    "uuid": status["cluster_reference"]["uuid"], "name": status["cluster_reference"]["name"]},
        "controllerVm": {"$reserved": _R4, "$objectType": "clustermgmt.v4.config.ControllerVmReference",
                         "externalAddress": _ip(res["controller_vm"]["ip"]), "isInMaintenanceMode": False},
        "numberOfCpuCores": res.get("num_cpu_cores"), "numberOfCpuSockets": res.get("num_cpu_sockets"),
        "numberOfCpuThreads": 2 * res.get("num_cpu_cores", 0), "cpuCapacityHz": res.get("cpu_capacity_hz"),
        "cpuModel": res.get("cpu_model"), "memorySizeBytes": res["memory_capacity_mib"] * 1024 * 1024,
        "nodeSerial": res.get("serial_number"), "blockSerial": block.get("block_serial_number"),
        "blockModel": block.get("block_model"), "maintenanceState": "normal", "nodeStatus": "NORMAL",
    }
    if status.get("name"):
        out["hostName"] = status["name"]
    return {k: v for k, v in out.items() if v is not None}


class V4Api:
    """The v4 endpoints of one emulated Prism Central (``PrismServer`` routes to it)."""

    def __init__(self, pc: PrismCentralFleet, version: str = "v4.0") -> None:
        if version not in KNOWN_VERSIONS:
            raise ValueError(f"v4 version must be one of {KNOWN_VERSIONS}")
        self.pc = pc
        self.origin = ""  # scheme://host:port, for the absolute links real answers carry (set on start)
        self.version = version
        self.served = KNOWN_VERSIONS[:KNOWN_VERSIONS.index(version) + 1]
        self._lists: dict[str, Callable[[], list[dict]]] = {
            "clustermgmt/config/clusters": lambda: [cluster_to_v4(c) for c in pc.cluster_entities()],
            "clustermgmt/config/hosts": lambda: [host_to_v4(h) for h in pc.host_entities()],
            "clustermgmt/config/storage-containers": self.storage_containers,
            "networking/config/subnets": self.subnets,
            "prism/config/categories": self.categories,
        }

    # ------------------------------------------------------------ small lists
    def storage_containers(self) -> list[dict]:
        out = []
        for c in self.pc._clusters:
            ref = c["container"]
            out.append({"$reserved": _R4, "$objectType": "clustermgmt.v4.config.StorageContainer",
                        "containerExtId": ref["uuid"], "extId": ref["uuid"], "name": ref["name"],
                        "clusterExtId": c["uuid"], "clusterName": c["name"], "replicationFactor": 2,
                        "maxCapacityBytes": 40_862_069_628_638, "isCompressionEnabled": True,
                        "onDiskDedup": "OFF", "erasureCode": "OFF", "isInternal": False})
        return out

    def subnets(self) -> list[dict]:
        out = []
        for c in self.pc._clusters:
            for k, ref in enumerate(c["subnets"]):
                out.append({"$reserved": _R4, "$objectType": "networking.v4.config.Subnet",
                            "extId": ref["uuid"], "name": ref["name"], "subnetType": "VLAN",
                            "networkId": 100 + c["index"] * 2 + k, "clusterReference": c["uuid"],
                            "isExternal": False})
        return out

    def categories(self) -> list[dict]:
        pairs = [("CostCenter", v) for v in COST_CENTERS] + [("Environment", v) for v in ENVIRONMENTS]
        pairs += [("Project", p) for p in PROJECTS]  # a key no fleet VM uses: a lookup holds more than it needs
        return [{"$reserved": _R4, "$objectType": "prism.v4.config.Category", "extId": ext_id("category", k, v),
                 "key": k, "value": v, "type": "USER", "description": ""} for k, v in pairs]

    # ------------------------------------------------------------ routing
    def route(self, method: str, path: str, query: str) -> tuple[int, Any]:
        """(status, payload) for a v4 path; raises V4Error."""
        if path == "/api/vmm/unversioned/info":
            if method != "OPTIONS":
                raise V4Error(405, f"method {method} not allowed", "VMM-20001", "METHOD_NOT_ALLOWED")
            return 200, {"data": self.version}
        m = _PATH.match(path)
        if not m:
            raise V4Error(404, f"path {path} not found", "VMM-20404", "NOT_FOUND")
        namespace, version, rest = m.groups()
        if version not in self.served:
            raise V4Error(404, f"API version {version} is not served (highest {self.version})",
                          "VMM-20404", "NOT_FOUND")
        if method != "GET":
            raise V4Error(405, f"method {method} not allowed", "VMM-20001", "METHOD_NOT_ALLOWED")
        options = _options(query)
        key = f"{namespace}/{rest}"
        base = f"{self.origin}/api/{namespace}/{version}/{rest}"
        if key == "vmm/ahv/config/vms":
            return 200, self._vm_page(options, base, namespace)
        if key == "vmm/ahv/stats/vms":
            return 200, self._stats_page(options, base)
        if key in self._lists:
            every = _filtered(self._lists[key](), options.get("$filter"))
            page, limit = _paging(options)
            return 200, _envelope(every[page * limit:(page + 1) * limit], len(every), page, limit, base,
                                  _list_type(key))
        raise V4Error(404, f"path {path} not found", "VMM-20404", "NOT_FOUND")

    def _vm_page(self, options: dict, base: str, namespace: str) -> dict:
        page, limit = _paging(options)
        flt = options.get("$filter")
        if flt:
            ids = _filter_ids(flt)
            indices = [i for i in (self.pc.vm_index_of(u) for u in ids) if i is not None]
            total = len(indices)
            chosen = indices[page * limit:(page + 1) * limit]
        else:
            total = self.pc.vm_count()
            chosen = self.pc.live_indices(page * limit, limit) if page * limit < total else []
        vms = [vm_to_v4(self.pc.vm_entity(i)) for i in chosen]
        return _envelope(vms, total, page, limit, base, "vmm.v4.ahv.config.ListVmsApiResponse")

    def _stats_page(self, options: dict, base: str) -> dict:
        """``GET ahv/stats/vms``: a page of VmStats, each ``stats`` a list of tuples of the
        selected fields (``$select=*`` or ``stats/<field>,...``) in [$startTime, $endTime)."""
        for required in ("$startTime", "$endTime"):
            if required not in options:
                raise V4Error(400, f"{required} is required", "VMM-20005", "INVALID_ARGUMENT")
        start_ms = parse_time(options["$startTime"], "$startTime")
        end_ms = parse_time(options["$endTime"], "$endTime")
        if end_ms <= start_ms:
            raise V4Error(400, "$endTime must be after $startTime")
        interval = options.get("$samplingInterval", str(self.pc.spec.stats_interval_s))
        if not interval.isdigit() or int(interval) < 1:
            raise V4Error(400, "$samplingInterval must be a positive number of seconds")
        stat_type = options.get("$statType", "AVG")
        if stat_type not in ("AVG", "MIN", "MAX", "LAST", "SUM", "COUNT"):
            raise V4Error(400, f"$statType {stat_type!r} is not one of AVG, MIN, MAX, LAST, SUM, COUNT")
        if (end_ms - start_ms) // (int(interval) * 1000) > 100_000:
            raise V4Error(400, "too many points requested")
        fields = _selected_stats(options.get("$select", "*"))
        page, limit = _paging(options)
        flt = options.get("$filter")
        if flt:
            ids = _filter_ids(flt)
            indices = [i for i in (self.pc.vm_index_of(u) for u in ids) if i is not None]
            total, chosen = len(indices), indices[page * limit:(page + 1) * limit]
        else:
            total = self.pc.vm_count()
            chosen = self.pc.live_indices(page * limit, limit) if page * limit < total else []
        data = []
        for i in chosen:
            series = self.pc.vm_stats(i, start_ms, end_ms, int(interval))
            times = [t for t, _ in next(iter(series.values()), [])]
            tuples: list[dict] = []
            for k, t_us in enumerate(times):
                point: dict[str, Any] = {"timestamp": _usec_iso(t_us)}
                for attr, field in fields:
                    value = series[attr][k][1]
                    if value != "-1":  # no data: v4 leaves the field out
                        point[field] = int(value)
                tuples.append(point)
            if tuples:
                tuples[0].update({"$objectType": "vmm.v4.ahv.stats.VmStatsTuple", "$reserved": _R4})
            data.append({"$reserved": _R4, "$objectType": "vmm.v4.ahv.stats.VmStats",
                         "extId": self.pc.vm_uuid(i), "stats": tuples})
        return _envelope(data, total, page, limit, base, "vmm.v4.ahv.stats.ListVmStatsApiResponse")


def _list_type(key: str) -> str:
    namespace, _, kind = key.partition("/")
    name = kind.rsplit("/", 1)[-1].title().replace("-", "")
    return f"{namespace}.v4.config.List{name}ApiResponse"


def _options(query: str) -> dict[str, str]:
    out = {}
    for k, v in parse_qs(query, keep_blank_values=True).items():
        out[unquote(k)] = v[-1]
    unknown = [k for k in out if k.startswith("$") and k not in (
        "$page", "$limit", "$filter", "$select", "$orderby", "$expand", "$startTime", "$endTime",
        "$samplingInterval", "$statType")]
    if unknown:
        raise V4Error(400, f"unknown query option {unknown[0]}")
    return out


def _paging(options: dict) -> tuple[int, int]:
    page_text, limit_text = options.get("$page", "0"), options.get("$limit", str(DEFAULT_LIMIT))
    if not page_text.isdigit():
        raise V4Error(400, "$page must be an integer >= 0")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise V4Error(400, f"$limit must be an integer in [1, {MAX_LIMIT}]")
    return int(page_text), int(limit_text)


def _filter_ids(flt: str) -> list[str]:
    """The extIds an ``extId eq '..' or ...`` / ``extId in ('..', ..)`` filter names."""
    found = _FILTER_EQ.findall(flt)
    for group in _FILTER_IN.findall(flt):
        found += [x.strip().strip("'") for x in group.split(",") if x.strip()]
    if not found:
        raise V4Error(400, f"unsupported $filter (the emulator takes extId eq/in): {flt[:80]!r}")
    return found


def _filtered(items: list[dict], flt: str | None) -> list[dict]:
    if not flt:
        return items
    ids = set(_filter_ids(flt))
    return [x for x in items if x.get("extId") in ids]


def _selected_stats(select: str) -> list[tuple[str, str]]:
    if select.strip() == "*":
        return list(STATS_FIELDS.items())
    wanted = []
    by_field = {v: k for k, v in STATS_FIELDS.items()}
    for part in select.split(","):
        part = part.strip()
        name = part[len("stats/"):] if part.startswith("stats/") else part
        if name in ("extId", "stats", "timestamp"):
            continue
        if name not in by_field:
            raise V4Error(400, f"$select names an unknown stat {name!r}")
        wanted.append((by_field[name], name))
    return wanted


def _envelope(data: list, total: int, page: int, limit: int, base: str, object_type: str) -> dict:
    last = max(0, (total - 1) // limit)

    def link(p: int, rel: str) -> dict:
        return {"href": f"{base}?$page={p}&$limit={limit}", "rel": rel}

    links = [link(page, "self"), link(0, "first"), link(last, "last")]
    if page < last:
        links.append(link(page + 1, "next"))
    if page > 0:
        links.append(link(page - 1, "prev"))
    out: dict[str, Any] = {"$reserved": _R4, "$objectType": object_type}
    if data:  # an empty page has no data key (the SDK models it optional): readers must survive that
        out["data"] = data
    out["metadata"] = {"$reserved": _R1, "$objectType": "common.v1.response.ApiResponseMetadata",
                       "flags": [_flag("hasError", False), _flag("isPaginated", True), _flag("isTruncated", False)],
                       "links": links, "totalAvailableResults": total}
    return out
