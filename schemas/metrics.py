"""The metrics the pipeline writes and the monitoring plugin serves, in one place.

The pipeline (transforms/stages/metrics.py) adds each one's conversion from
Prism's units; the plugin (plugin/metric_store.py) reads names and groups here
without depending on Beam.
"""
from __future__ import annotations

from typing import NamedTuple


class MetricSpec(NamedTuple):
    attribute: str  # the Prism groups API attribute it is read from
    unit: str  # the unit of the value written
    display_name: str
    group: str


METRIC_CATALOG: dict[str, MetricSpec] = {
    "cpu.utilization": MetricSpec("hypervisor_cpu_usage_ppm", "Percent", "CPU Utilization", "CPU"),
    "memory.utilization": MetricSpec("memory_usage_ppm", "Percent", "Memory Utilization", "Memory"),
    "disk.read_iops": MetricSpec("controller_num_read_iops", "Count/Second", "Disk Read IOPS", "Disk"),
    "disk.write_iops": MetricSpec("controller_num_write_iops", "Count/Second", "Disk Write IOPS", "Disk"),
    "disk.read_throughput": MetricSpec("controller_read_io_bandwidth_kBps", "Bytes/Second",
                                       "Disk Read Throughput", "Disk"),
    "disk.write_throughput": MetricSpec("controller_write_io_bandwidth_kBps", "Bytes/Second",
                                        "Disk Write Throughput", "Disk"),
    "network.received_throughput": MetricSpec("hypervisor_num_received_bytes", "Bytes/Second",
                                              "Network Received Throughput", "Network"),
    "network.sent_throughput": MetricSpec("hypervisor_num_transmitted_bytes", "Bytes/Second",
                                          "Network Sent Throughput", "Network"),
}
