"""Deterministic, lazy generator of a Nutanix fleet as seen through Prism Central v3.

Why lazy: the emulator must serve fleets of 10^4..10^6 VMs without building them
in memory. Every entity is a pure function of ``(seed, prism central index, kind,
entity index)``, so VM ``i`` is identical whichever page it is fetched in, and a
test can recompute any entity or stats point independently of the server.

Payload shapes follow the real v3 recordings (ListVM/ListCluster) and the v3
swagger ``host_*`` definitions. A small, hash-chosen share of VMs boots
SECURE_BOOT on a Q35 machine with a vTPM, carries a vGPU or is protected by a
rule (swagger ``vm_vtpm_status``, ``vm_gpu_output_status``); these change no
count.

``FleetSpec(real_world_quirks=True)`` adds what real Prism Centrals answer
beyond the recordings (``../shared/docs/prism.md``, "Seen in real v3
answers"), off by default because it changes counts and costs: VMs being
created (PENDING, no ``status.resources``, spec disks without uuids), being
changed (PENDING, partial ``status.resources``) or in ERROR (a
``message_list``, no ``status.resources``); NIC addresses listed twice
(ASSIGNED and LEARNED) and link-local ones; disks without a storage container
(5.10); a nameless host; a cluster node at 127.0.0.1 with no version.
"""
from __future__ import annotations

import hashlib
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

STATS_ATTRIBUTES: tuple[str, ...] = (
    "hypervisor_cpu_usage_ppm",
    "memory_usage_ppm",
    "controller_num_iops",
    "controller_num_read_iops",
    "controller_num_write_iops",
    "controller_read_io_bandwidth_kBps",
    "controller_write_io_bandwidth_kBps",
    "controller_avg_io_latency_usecs",
    "hypervisor_num_received_bytes",
    "hypervisor_num_transmitted_bytes",
)

MEMORY_SIZES_MIB = (1024, 2048, 4096, 8192, 16384)
DISK_SIZES_GIB = (20, 40, 50, 100, 200, 500)
COST_CENTERS = ("CC-1001", "CC-2002", "CC-3003", "CC-4004", "CC-5005")
ENVIRONMENTS = ("Production", "Staging", "Dev", "Test")
PROJECTS = ("_internal", "default", "finance", "engineering")
GUEST_OS = (
    "linux:64:CentOS Linux-7.9.2009",
    "linux:64:Ubuntu-22.04",
    "linux:64:Red Hat Enterprise Linux-8.8",
    "windows:64:Windows Server 2019",
    "windows:64:Windows Server 2022",
)
CPU_MODELS = (
    ("Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", 2_100_000_000, 16),
    ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", 3_000_000_000, 24),
    ("Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz", 2_200_000_000, 12),
    ("AMD EPYC 7543 32-Core Processor", 2_800_000_000, 32),
)
HOST_MEMORY_GIB = (384, 512, 768, 1024)
AOS_VERSION = "6.5.4.5"
AHV_VERSION = "el7.nutanix.20220304.462"
_EPOCH_BASE = int(datetime(2023, 1, 1, tzinfo=timezone.utc).timestamp())
_PHI = 0.6180339887498949  # golden ratio: low-discrepancy power-state sequence
# real_world_quirks: which VMs (index % QUIRK_PERIOD) are in which state
QUIRK_PERIOD = 20
QUIRK_CREATING, QUIRK_UPDATING, QUIRK_ERROR, QUIRK_NO_CONTAINER = 3, 13, 7, 5
ERROR_MESSAGE = {"message": "Failed to power on VM: not enough memory on any host of the cluster",
                 "reason": "RESOURCE_SHORTAGE", "details": {}}


@dataclass(frozen=True)
class FleetSpec:
    """Shape of the whole fleet; every generated value derives from ``seed``."""

    seed: int = 7
    prism_centrals: int = 1
    clusters: int = 2            # workload clusters per Prism Central
    hosts_per_cluster: int = 3
    vms: int = 100               # VMs in the WHOLE fleet, round-robin over the Prism Centrals
    disks_per_vm: int = 2        # DISK-type disks per VM (every 4th VM also gets a CDROM)
    power_on_ratio: float = 0.8  # share of VMs with power_state ON
    stats_interval_s: int = 300  # spacing of generated stats points
    real_world_quirks: bool = False  # PENDING/ERROR VMs, duplicate and link-local IPs, a nameless host

    def __post_init__(self) -> None:
        if self.prism_centrals < 1:
            raise ValueError("prism_centrals must be >= 1")
        if self.clusters < 1 or self.hosts_per_cluster < 1:
            raise ValueError("clusters and hosts_per_cluster must be >= 1")
        if self.vms < 0 or self.disks_per_vm < 0:
            raise ValueError("vms and disks_per_vm must be >= 0")
        if not 0.0 <= self.power_on_ratio <= 1.0:
            raise ValueError("power_on_ratio must be within [0, 1]")
        if self.stats_interval_s < 1:
            raise ValueError("stats_interval_s must be >= 1")


# --------------------------------------------------------------------------- helpers
def _rng(seed: int, pc: int, kind: str, i: int | str) -> random.Random:
    """Per-entity RNG: entity i never depends on how many others were generated."""
    return random.Random(f"{seed}:{pc}:{kind}:{i}")


def _uuid4(rng: random.Random) -> str:
    """Same result as ``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, 3x faster."""
    n = rng.getrandbits(128)
    n = (n & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _cluster_style_uuid(rng: random.Random) -> str:
    """Cluster uuids look like the real ``0005b0f1-8f43-a0f2-02b7-3cecef193712``."""
    h = f"0005{rng.getrandbits(112):028x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _unit(*parts: object) -> float:
    """Cheap deterministic uniform in [0, 1) (used on hot paths: placement, counts)."""
    d = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") / 2.0**64


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mac(rng: random.Random) -> str:
    return "50:6b:8d:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))


def _ref(kind: str, uuid: str, name: str | None = None) -> dict:
    ref = {"kind": kind, "uuid": uuid}
    if name is not None:
        ref["name"] = name
    return ref


# --------------------------------------------------------------------------- fleet
class PrismCentralFleet:
    """One Prism Central's slice of the fleet.

    VMs are addressed by a local index ``i`` in ``[0, base_vms + added)``.
    ``deleted`` holds indices that are gone; listings skip them in stable order.
    ``vm_entity(i)`` is a pure function and works for deleted indices too.
    """

    def __init__(self, spec: FleetSpec, index: int, base_vms: int) -> None:
        self.spec = spec
        self.index = index
        self.base_vms = base_vms
        self.name = f"prism-central-{index}"
        self.uuid = _uuid4(_rng(spec.seed, index, "pc", 0))
        self.deleted: set[int] = set()
        self.added: int = 0
        self._lock = threading.Lock()
        self._version = 0  # bumped on every mutation; invalidates caches
        self._host_counts: tuple[int, dict[tuple[int, int], int]] | None = None
        self._uuid_index: tuple[int, dict[str, int]] | None = None
        # pure functions of the VM's index, kept once computed (never invalidated)
        self._vm_uuids: dict[int, str] = {}
        self._stats_bases: dict[int, tuple[float, ...]] = {}
        self._clusters = [self._cluster_info(j) for j in range(spec.clusters)]
        self._phase = _unit(spec.seed, index, "phase")
        self._owner = _ref("user", _uuid4(_rng(spec.seed, index, "user", 0)), "admin")
        self._projects = {p: _ref("project", _uuid4(_rng(spec.seed, index, "project", p)), p)
                          for p in PROJECTS}

    # ------------------------------------------------------------ static topology
    def _cluster_info(self, j: int) -> dict:
        rng = _rng(self.spec.seed, self.index, "cluster", j)
        model, hz, cores = CPU_MODELS[rng.randrange(len(CPU_MODELS))]
        info: dict[str, Any] = {
            "index": j,
            "uuid": _cluster_style_uuid(rng),
            "name": f"cluster-{self.index:02d}-{j:02d}",
            "net": f"10.{(40 + self.index) % 256}.{j % 256}",
            "cpu_model": model,
            "cpu_hz": hz,
            "cores_per_socket": cores,
            "memory_gib": HOST_MEMORY_GIB[rng.randrange(len(HOST_MEMORY_GIB))],
            "container": _ref("storage_container", _uuid4(rng), "default-container"),
            "subnets": [_ref("subnet", _uuid4(rng), f"vlan{100 + j * 2 + k}") for k in range(2)],
            "created": _EPOCH_BASE - rng.randrange(400 * 86400),
            "hosts": [],
        }
        for h in range(self.spec.hosts_per_cluster):
            hrng = _rng(self.spec.seed, self.index, f"host{j}", h)
            block_serial = f"{self.index:02d}{j:02d}SM{(h // 4):04d}"
            info["hosts"].append({
                "index": h,
                "uuid": _uuid4(hrng),
                "name": f"NTNX-{block_serial}-{'ABCD'[h % 4]}",
                "serial": f"ZM{hrng.getrandbits(40):010X}",
                "block_serial": block_serial,
                "hyp_ip": f"{info['net']}.{(10 + 2 * h) % 256}",
                "cvm_ip": f"{info['net']}.{(11 + 2 * h) % 256}",
            })
        return info

    def cluster_entities(self) -> list[dict]:
        """Prism Central pseudo-cluster first, then the workload clusters."""
        return [self._pc_cluster_entity()] + [self._cluster_entity(c) for c in self._clusters]

    def _pc_cluster_entity(self) -> dict:
        rng = _rng(self.spec.seed, self.index, "pccluster", 0)
        network = {
            "external_ip": f"10.{(40 + self.index) % 256}.250.10",
            "ntp_server_ip_list": ["0.centos.pool.ntp.org", "1.centos.pool.ntp.org"],
            "external_subnet": f"10.{(40 + self.index) % 256}.250.0/255.255.255.0",
            "fully_qualified_domain_name": f"{self.name}.example.local",
            "name_server_ip_list": ["10.40.64.15", "10.40.64.16"],
            "internal_subnet": f"10.{(40 + self.index) % 256}.250.0/255.255.255.0",
        }
        config_spec = {
            "software_map": _software_map("2024.3", "ncc-5.0.1"),
            "encryption_status": "NOT_SUPPORTED",
            "redundancy_factor": 2,
            "domain_awareness_level": "NODE",
            "enabled_feature_list": ["PASSWORD_REMOTE_LOGIN_ENABLED", "SHADOW_CLONES_ENABLED"],
            "timezone": "UTC",
            "operation_mode": "NORMAL",
        }
        commit = f"{rng.getrandbits(160):040x}"
        config_status = dict(config_spec, service_list=["PRISM_CENTRAL"], is_available=True,
                             cluster_arch="X86_64", build={
                                 "build_type": "release", "version": "pc",
                                 "full_version": f"el8.5-release-fraser-2024.3-stable-pc-0.1-{commit}",
                                 "commit_id": commit, "short_commit_id": commit[:6],
                                 "is_long_term_support": False,
                                 "commit_date": "2024-11-21T06:38:19Z"})
        created = _iso(_EPOCH_BASE - 500 * 86400)
        return {
            "status": {"resources": {"config": config_status, "network": network,
                                     "runtime_status_list": ["SSP_CONFIG_OWNER"]},
                       "name": self.name, "state": "COMPLETE"},
            "metadata": {"uuid": self.uuid, "spec_hash": "0" * 50, "spec_version": 82,
                         "categories": {}, "categories_mapping": {}, "creation_time": created,
                         "last_update_time": created, "kind": "cluster"},
            "spec": {"name": self.name, "resources": {"config": config_spec,
                                                     "network": dict(network)}},
        }

    def _cluster_entity(self, c: dict) -> dict:
        rng = _rng(self.spec.seed, self.index, "clusterentity", c["index"])
        network = {
            "external_ip": f"{c['net']}.2",
            "ntp_server_ip_list": ["0.centos.pool.ntp.org", "1.centos.pool.ntp.org"],
            "external_subnet": f"{c['net']}.0/255.255.255.0",
            "external_data_services_ip": f"{c['net']}.3",
            "name_server_ip_list": ["10.40.64.15", "10.40.64.16"],
            "internal_subnet": "192.168.5.0/255.255.255.128",
        }
        config_spec = {
            "software_map": _software_map(AOS_VERSION, "ncc-5.0.0"),
            "encryption_status": "NOT_SUPPORTED",
            "supported_information_verbosity": "BASIC_PLUS_CORE_DUMP",
            "redundancy_factor": 2,
            "domain_awareness_level": "NODE",
            "enabled_feature_list": ["PASSWORD_REMOTE_LOGIN_ENABLED", "SHADOW_CLONES_ENABLED"],
            "timezone": "UTC",
            "operation_mode": "NORMAL",
        }
        commit = f"{rng.getrandbits(160):040x}"
        config_status = dict(config_spec, service_list=["AOS"], is_available=True,
                             cluster_arch="X86_64", build={
                                 "build_type": "release", "version": AOS_VERSION,
                                 "full_version": f"el7.3-release-fraser-{AOS_VERSION}-stable-{commit}",
                                 "commit_id": commit, "short_commit_id": commit[:6],
                                 "is_long_term_support": True})
        created = _iso(c["created"])
        return {
            "status": {
                "resources": {
                    "config": config_status,
                    "nodes": {"hypervisor_server_list": [
                        {"ip": "127.0.0.1", "type": "AHV", "version": ""}
                        if self.spec.real_world_quirks and k == 0 else
                        {"ip": h["hyp_ip"], "type": "AHV", "version": AHV_VERSION}
                        for k, h in enumerate(c["hosts"])]},
                    "network": network,
                },
                "name": c["name"],
                "state": "COMPLETE",
            },
            "metadata": {"uuid": c["uuid"], "spec_hash": "0" * 50, "spec_version": 27,
                         "categories": {}, "categories_mapping": {}, "creation_time": created,
                         "last_update_time": created, "kind": "cluster"},
            "spec": {"name": c["name"], "resources": {"config": config_spec,
                                                     "network": dict(network)}},
        }

    def host_entities(self) -> list[dict]:
        """All hosts; ``hypervisor.num_vms`` matches the ON VMs placed on each host."""
        counts = self._running_vm_counts()
        out = []
        for c in self._clusters:
            for h in c["hosts"]:
                out.append(self._host_entity(c, h, counts.get((c["index"], h["index"]), 0)))
        return out

    def host_nameless(self, cluster: int, host: int) -> bool:
        """real_world_quirks: the first host of the first cluster answers without a name."""
        return self.spec.real_world_quirks and cluster == 0 and host == 0

    def _host_entity(self, c: dict, h: dict, num_vms: int) -> dict:
        entity = self._named_host_entity(c, h, num_vms)
        if self.host_nameless(c["index"], h["index"]):
            del entity["status"]["name"], entity["spec"]["name"]
        return entity

    def _named_host_entity(self, c: dict, h: dict, num_vms: int) -> dict:
        cores = 2 * c["cores_per_socket"]
        created = _iso(c["created"])
        controller_vm = {"ip": h["cvm_ip"], "oplog_usage": {"oplog_disk_pct": 0.4,
                                                           "oplog_disk_size": 443875065856}}
        return {
            "status": {
                "state": "COMPLETE",
                "name": h["name"],
                "cluster_reference": _ref("cluster", c["uuid"], c["name"]),
                "resources": {
                    "serial_number": h["serial"],
                    "num_cpu_cores": cores,
                    "num_cpu_sockets": 2,
                    "cpu_capacity_hz": cores * c["cpu_hz"],
                    "memory_capacity_mib": c["memory_gib"] * 1024,
                    "cpu_model": c["cpu_model"],
                    "hypervisor": {"hypervisor_full_name": f"AHV {AHV_VERSION}",
                                   "ip": h["hyp_ip"], "num_vms": num_vms},
                    "block": {"block_serial_number": h["block_serial"], "block_model": "NX-3060-G7"},
                    "host_type": "HYPER_CONVERGED",
                    "controller_vm": controller_vm,
                    "monitoring_state": "MONITORED",
                    "gpu_list": [],
                    "host_nics_id_list": [f"{h['uuid']}::eth{k}" for k in range(2)],
                },
            },
            "spec": {"name": h["name"], "resources": {"controller_vm": dict(controller_vm)}},
            "metadata": {"uuid": h["uuid"], "kind": "host", "spec_version": 3,
                         "spec_hash": "0" * 50, "categories": {}, "categories_mapping": {},
                         "creation_time": created, "last_update_time": created},
        }

    # ------------------------------------------------------------ VM index space
    def total_indices(self) -> int:
        """Size of the index space (base + added), deleted indices included."""
        return self.base_vms + self.added

    def vm_count(self) -> int:
        with self._lock:
            total = self.base_vms + self.added
            return total - sum(1 for d in self.deleted if d < total)

    def delete_vms(self, indices: Iterable[int]) -> None:
        """Mark VMs as gone (fault/delta tests). Unknown indices raise IndexError."""
        with self._lock:
            total = self.base_vms + self.added
            idx = list(indices)
            for i in idx:
                if not 0 <= i < total:
                    raise IndexError(f"VM index {i} out of range [0, {total})")
            self.deleted.update(idx)
            self._version += 1

    def add_vms(self, n: int) -> list[int]:
        """Append ``n`` new VMs after the current index space; returns their indices."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            start = self.base_vms + self.added
            self.added += n
            self._version += 1
            return list(range(start, start + n))

    def live_indices(self, offset: int = 0, length: int | None = None) -> list[int]:
        """Indices of existing VMs at listing positions [offset, offset+length)."""
        with self._lock:
            total = self.base_vms + self.added
            deleted = sorted(d for d in self.deleted if d < total)
        if length is None:
            length = total
        # Map listing position -> index: each deleted index <= candidate shifts it by one.
        idx = offset
        for d in deleted:
            if d <= idx:
                idx += 1
            else:
                break
        dset = set(deleted)
        out: list[int] = []
        while idx < total and len(out) < length:
            if idx not in dset:
                out.append(idx)
            idx += 1
        return out

    def iter_live_indices(self) -> Iterator[int]:
        with self._lock:
            total = self.base_vms + self.added
            dset = set(self.deleted)
        return (i for i in range(total) if i not in dset)

    def vm_entities(self, offset: int, length: int) -> list[dict]:
        return [self.vm_entity(i) for i in self.live_indices(offset, length)]

    # ------------------------------------------------------------ per-VM cheap facts
    def vm_power_on(self, i: int) -> bool:
        """Golden-ratio sequence: the ON share matches ``power_on_ratio`` closely."""
        return ((self._phase + i * _PHI) % 1.0) < self.spec.power_on_ratio

    def vm_running(self, i: int) -> bool:
        """Powered on and placed on a host: not a VM being created or in error."""
        return self.vm_power_on(i) and self.vm_quirk(i) not in (QUIRK_CREATING, QUIRK_ERROR)

    def vm_quirk(self, i: int) -> int | None:
        """real_world_quirks: the QUIRK_* this VM shows, else None."""
        if not self.spec.real_world_quirks:
            return None
        q = i % QUIRK_PERIOD
        return q if q in (QUIRK_CREATING, QUIRK_UPDATING, QUIRK_ERROR, QUIRK_NO_CONTAINER) else None

    def vm_placement(self, i: int) -> tuple[int, int]:
        """(cluster index, host index within the cluster) for VM i."""
        cluster = i % self.spec.clusters
        host = int(_unit(self.spec.seed, self.index, "vmhost", i) * self.spec.hosts_per_cluster)
        return cluster, host

    def vm_uuid(self, i: int) -> str:
        uuid = self._vm_uuids.get(i)
        if uuid is None:  # seeding an RNG from a string costs ~0.1 ms: once per VM
            uuid = self._vm_uuids[i] = _uuid4(_rng(self.spec.seed, self.index, "vm", i))
        return uuid

    def vm_name(self, i: int) -> str:
        return f"vm-{i:04d}-{self.index}"

    def vm_index_of(self, uuid: str) -> int | None:
        """Reverse lookup (built lazily, cached until the next mutation)."""
        with self._lock:
            cached = self._uuid_index
            version, total = self._version, self.base_vms + self.added
            dset = set(self.deleted)
        if cached is None or cached[0] != version:
            mapping = {self.vm_uuid(i): i for i in range(total) if i not in dset}
            cached = (version, mapping)
            with self._lock:
                self._uuid_index = cached
        return cached[1].get(uuid)

    def _running_vm_counts(self) -> dict[tuple[int, int], int]:
        with self._lock:
            cached = self._host_counts
            version = self._version
        if cached is not None and cached[0] == version:
            return cached[1]
        counts: dict[tuple[int, int], int] = {}
        for i in self.iter_live_indices():
            if self.vm_running(i):
                key = self.vm_placement(i)
                counts[key] = counts.get(key, 0) + 1
        with self._lock:
            self._host_counts = (version, counts)
        return counts

    # ------------------------------------------------------------ VM entity
    def vm_entity(self, i: int) -> dict:
        """The i-th VM as a v3 ``vm`` entity (shape of ListVM.response.json)."""
        if not 0 <= i < self.total_indices():
            raise IndexError(f"VM index {i} out of range")
        s = self.spec
        rng = _rng(s.seed, self.index, "vm", i)
        vm_uuid = _uuid4(rng)  # first draw: must match vm_uuid(i)
        name = self.vm_name(i)
        on = self.vm_power_on(i)
        cj, hj = self.vm_placement(i)
        c = self._clusters[cj]
        cluster_ref = _ref("cluster", c["uuid"], c["name"])
        sockets = rng.randint(1, 4)
        vps = rng.randint(1, 2)
        mem = MEMORY_SIZES_MIB[rng.randrange(len(MEMORY_SIZES_MIB))]
        created = _EPOCH_BASE + rng.randrange(700 * 86400)
        updated = created + rng.randrange(30 * 86400)
        boot_type = "UEFI" if rng.random() < 0.5 else "LEGACY"
        secure = _unit(s.seed, self.index, "secureboot", i) < 0.1  # hash-chosen: no rng draw moves
        if secure:
            boot_type = "SECURE_BOOT"
        gpu = _unit(s.seed, self.index, "gpu", i) < 0.05
        protected = _unit(s.seed, self.index, "protection", i) < 0.2

        disks_spec, disks_status = [], []
        for d in range(s.disks_per_vm):
            size_mib = DISK_SIZES_GIB[rng.randrange(len(DISK_SIZES_GIB))] * 1024
            disk = {
                "uuid": _uuid4(rng),
                "disk_size_bytes": size_mib * 1024 * 1024,
                "disk_size_mib": size_mib,
                "storage_config": {"flash_mode": "DISABLED",
                                   "storage_container_reference": dict(c["container"])},
                "device_properties": {"disk_address": {"device_index": d, "adapter_type": "SCSI"},
                                      "device_type": "DISK"},
            }
            if d == 0:
                disk["data_source_reference"] = _ref("image", _uuid4(rng))
            disks_spec.append(disk)
        if i % 4 == 0:
            cdrom: dict[str, Any] = {"uuid": _uuid4(rng),
                     "device_properties": {"disk_address": {"device_index": 0, "adapter_type": "IDE"},
                                           "device_type": "CDROM"}}
            if i % 8 == 4:  # some CDROMs report an explicit zero size, others none
                cdrom.update(disk_size_bytes=0, disk_size_mib=0)
            disks_spec.append(cdrom)
        for disk in disks_spec:
            st = dict(disk, is_encryption_in_progress=False, is_migration_in_progress=False)
            disks_status.append(st)

        nics = []
        for k in range(rng.randint(1, 2)):
            subnet = c["subnets"][k % len(c["subnets"])]
            ips = []
            if on or rng.random() < 0.5:  # powered-off VMs may have lost their lease
                octet2 = (100 + 50 * k + self.index) % 256
                ips = [{"ip": f"10.{octet2}.{(i // 250) % 256}.{i % 250 + 2}", "type": "ASSIGNED"}]
            nics.append({
                "nic_type": "NORMAL_NIC",
                "vlan_mode": "ACCESS",
                "uuid": _uuid4(rng),
                "ip_endpoint_list": ips,
                "mac_address": _mac(rng),
                "subnet_reference": dict(subnet),
                "is_connected": True,
                "trunked_vlan_list": [],
            })

        ngt = rng.random() < 0.5
        guest_os = GUEST_OS[rng.randrange(len(GUEST_OS))]
        categories: dict[str, str] = {}
        if rng.random() >= 0.15:
            categories = {"CostCenter": COST_CENTERS[rng.randrange(len(COST_CENTERS))],
                          "Environment": ENVIRONMENTS[rng.randrange(len(ENVIRONMENTS))]}
        project = PROJECTS[rng.randrange(len(PROJECTS))]
        power = "ON" if on else "OFF"

        common = {
            "num_threads_per_core": 1,
            "is_agent_vm": False,
            "cpu_hotplug_enabled": True,
            "memory_size_mib": mem,
            "boot_config": {"boot_device_order_list": ["CDROM", "DISK", "NETWORK"],
                            "boot_type": boot_type},
            "serial_port_list": [],
            "is_vcpu_hard_pinned": False,
            "power_state": power,
            "vnuma_config": {"num_vnuma_nodes": 0},
            "num_vcpus_per_socket": vps,
            "num_sockets": sockets,
            "hardware_virtualization_enabled": False,
            "gpu_list": [],
            "machine_type": "Q35" if secure else "PC",  # secure boot needs Q35 (v3 swagger)
            "hardware_clock_timezone": "UTC",
            "power_state_mechanism": {"guest_transition_config": {
                "should_fail_on_script_failure": False, "enable_script_exec": False},
                "mechanism": "HARD"},
            "vga_console_enabled": True,
            "memory_overcommit_enabled": False,
            "scsi_controller_enabled": True,
            "gpu_console_enabled": False,
            "enable_cpu_passthrough": False,
            "disable_branding": False,
        }
        spec_res = dict(common, disk_list=disks_spec, nic_list=nics)
        status_res = dict(
            common,
            disk_list=disks_status,
            nic_list=[dict(n) for n in nics],
            protection_type="RULE_PROTECTED" if protected else "UNPROTECTED",
            hypervisor_type="AHV",
            generation_uuid=_uuid4(rng),
            bios_uuid=vm_uuid,
            storage_config={},
        )
        if secure:  # vm_vtpm_config in spec (its secret is never answered), vm_vtpm_status in status
            spec_res["vtpm_config"] = {"vtpm_enabled": True}
            status_res["vtpm_config"] = {"vtpm_enabled": True, "version": "2.0"}
        if gpu:
            spec_res["gpu_list"] = [{"vendor": "NVIDIA", "mode": "VIRTUAL", "device_id": 326}]
            status_res["gpu_list"] = [{
                "vendor": "NVIDIA", "mode": "VIRTUAL", "device_id": 326, "name": "NVIDIA A16-4Q",
                "uuid": _uuid4(_rng(s.seed, self.index, "gpu", i)), "frame_buffer_size_mib": 4096,
                "fraction": 4, "num_virtual_display_heads": 4, "max_instances_per_vm": 1,
                "guest_driver_version": "535.104.05" if on else "", "pci_address": ""}]
        if ngt:
            spec_res["guest_tools"] = {"nutanix_guest_tools": {
                "state": "ENABLED", "iso_mount_state": "UNMOUNTED",
                "enabled_capability_list": ["VSS_SNAPSHOT", "SELF_SERVICE_RESTORE"]}}
            status_res["guest_tools"] = {"nutanix_guest_tools": {
                "state": "ENABLED", "ngt_state": "INSTALLED", "is_reachable": on,
                "guest_os_version": guest_os, "version": "4.1", "available_version": "4.1",
                "iso_mount_state": "UNMOUNTED", "vss_snapshot_capable": guest_os.startswith("windows"),
                "vm_mobility_drivers_installed": guest_os.startswith("windows"),
                "enabled_capability_list": ["VSS_SNAPSHOT", "SELF_SERVICE_RESTORE"]}}
        if on:
            h = c["hosts"][hj]
            status_res["host_reference"] = _ref("host", h["uuid"], h["name"])

        description = f"{name} ({categories.get('Environment', 'unassigned')})"
        entity: dict[str, Any] = {
            "status": {
                "name": name,
                "cluster_reference": dict(cluster_ref),
                "resources": status_res,
                "description": description,
                "state": "COMPLETE",
                "execution_context": {"task_uuid": [_uuid4(rng)]},
            },
            "metadata": {
                "uuid": vm_uuid,
                "spec_hash": "0" * 50,
                "spec_version": rng.randrange(10),
                "entity_version": str(1 + rng.randrange(20)),
                "owner_reference": dict(self._owner),
                "categories": categories,
                "categories_mapping": {k: [v] for k, v in categories.items()},
                "project_reference": dict(self._projects[project]),
                "creation_time": _iso(created),
                "last_update_time": _iso(updated),
                "kind": "vm",
            },
            "spec": {
                "description": description,
                "resources": spec_res,
                "cluster_reference": cluster_ref,
                "name": name,
            },
        }
        quirk = self.vm_quirk(i)
        if s.real_world_quirks:
            _add_ip_quirks(i, entity["status"]["resources"]["nic_list"])
        if quirk is not None:
            _apply_vm_quirk(quirk, entity)
        return entity

    # ------------------------------------------------------------ VM stats
    def vm_stats(self, i: int, start_ms: int, end_ms: int,
                 interval_s: int | None = None) -> dict[str, list[tuple[int, str]]]:
        """Time series for VM i: points at every multiple of interval_s in [start_ms, end_ms).

        Times are microseconds (like real groups answers); values are integer strings;
        a powered-off VM yields "-1" (no data) everywhere.
        """
        interval_s = interval_s or self.spec.stats_interval_s
        if interval_s < 1:
            raise ValueError("interval_s must be >= 1")
        step_ms = interval_s * 1000
        first = -(-start_ms // step_ms) * step_ms
        times = range(first, end_ms, step_ms)
        out: dict[str, list[tuple[int, str]]] = {a: [] for a in STATS_ATTRIBUTES}
        on = self.vm_running(i)
        base = self._stats_base(i) if on else None
        for t_ms in times:
            t_us = t_ms * 1000
            if base is None:
                for a in STATS_ATTRIBUTES:
                    out[a].append((t_us, "-1"))
                continue
            for a, v in zip(STATS_ATTRIBUTES, self._stats_point(i, t_ms // 1000, base)):
                out[a].append((t_us, str(v)))
        return out

    def _stats_base(self, i: int) -> tuple[float, ...]:
        base = self._stats_bases.get(i)
        if base is None:
            base = self._stats_bases[i] = self._new_stats_base(i)
        return base

    def _new_stats_base(self, i: int) -> tuple[float, ...]:
        r = _rng(self.spec.seed, self.index, "statbase", i)
        return (r.uniform(0.10, 0.70),   # cpu share
                r.uniform(0.20, 0.85),   # memory share
                r.uniform(5, 1500),      # iops
                r.uniform(0.3, 0.8),     # read fraction
                r.uniform(4, 64),        # kB per io
                r.uniform(300, 3000),    # latency usecs
                r.uniform(1e4, 5e7))     # bytes per sample

    def _stats_point(self, i: int, t_s: int, base: tuple[float, ...]) -> tuple[int, ...]:
        """All ten attribute values of VM i at second t_s (consistent with each other)."""
        cpu, mem, iops_b, rfrac, kb, lat, net = base
        d = hashlib.blake2b(f"{self.spec.seed}:{self.index}:{i}:{t_s}".encode(),
                            digest_size=48).digest()
        u = [int.from_bytes(d[k:k + 8], "big") / 2.0**64 for k in range(0, 48, 8)]
        cpu_ppm = int(min(0.90, max(0.05, cpu + (u[0] - 0.5) * 0.3)) * 1_000_000)
        mem_ppm = int(min(0.98, max(0.05, mem + (u[1] - 0.5) * 0.1)) * 1_000_000)
        iops = int(iops_b * (0.5 + u[2]))
        read = int(iops * rfrac)
        write = iops - read
        return (cpu_ppm, mem_ppm, iops, read, write, int(read * kb), int(write * kb),
                int(lat * (0.7 + 0.6 * u[3])), int(net * (0.5 + u[4])),
                int(net * 0.6 * (0.5 + u[5])))


def _add_ip_quirks(i: int, status_nics: list[dict]) -> None:
    """Every third VM's NIC lists its address again as LEARNED; every fifth also
    learned link-local ones (IPv4 169.254/16 and IPv6 fe80::/10)."""
    for k, nic in enumerate(status_nics):
        ips = [dict(e) for e in nic["ip_endpoint_list"]]
        if ips and i % 3 == 0:
            ips.append({"ip": ips[0]["ip"], "type": "LEARNED"})
        if i % 5 == 0:
            ips.append({"ip": f"169.254.{i % 250 + 1}.{k + 10}", "type": "LEARNED"})
            ips.append({"ip": f"fe80::526b:8dff:fe{i % 256:02x}:{k:04x}", "type": "LEARNED"})
        nic["ip_endpoint_list"] = ips


def _apply_vm_quirk(quirk: int, entity: dict) -> None:
    """Turn a COMPLETE VM into one being created, changed or in error (shapes of
    v3 swagger vm_def_status / message_resource)."""
    status, spec_res = entity["status"], entity["spec"]["resources"]
    if quirk == QUIRK_CREATING:  # the intent is accepted; Prism has made nothing yet
        entity["status"] = {"state": "PENDING", "execution_context": status["execution_context"],
                            "resources": {}}
        for disk in spec_res["disk_list"]:  # uuids come with the disks
            disk.pop("uuid", None)
        for nic in spec_res["nic_list"]:
            nic.pop("uuid", None)
    elif quirk == QUIRK_UPDATING:  # a resize in flight: status lacks what is changing
        status["state"] = "PENDING"
        for key in ("memory_size_mib", "disk_list"):
            status["resources"].pop(key, None)
    elif quirk == QUIRK_ERROR:
        entity["status"] = {"state": "ERROR", "name": status["name"], "message_list": [dict(ERROR_MESSAGE)],
                            "cluster_reference": status["cluster_reference"],
                            "execution_context": status["execution_context"]}
    elif quirk == QUIRK_NO_CONTAINER:  # 5.10: disks without storage_container_reference
        for disks in (spec_res["disk_list"], status["resources"]["disk_list"]):
            for disk in disks:
                disk.get("storage_config", {}).pop("storage_container_reference", None)


def _software_map(nos: str, ncc: str) -> dict:
    return {"NOS": {"software_type": "NOS", "status": "INSTALLED", "version": nos},
            "NCC": {"software_type": "NCC", "status": "INSTALLED", "version": ncc}}


def generate_fleet(spec: FleetSpec) -> list[PrismCentralFleet]:
    """Split ``spec.vms`` round-robin over the Prism Centrals (global VM g -> PC g % P)."""
    p = spec.prism_centrals
    return [PrismCentralFleet(spec, k, max(0, (spec.vms - k + p - 1) // p)) for k in range(p)]
