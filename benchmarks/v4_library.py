"""Which library reads v4: the official ``ntnx-vmm-py-client`` SDK or the project's own client?

Measures the time and the Python memory to read and parse pages of 100 VMs from the
emulated v4 API both ways, each in a fresh process:

- ``own``: ``connectors.prism_v4.PrismV4Client.list_v4`` (requests + orjson: dicts), and
  the same with the conversion to the v3 form the pipeline uses (``own+convert``);
- ``sdk``: ``ntnx_vmm_py_client.VmApi.list_vms(_page, _limit=100)`` (urllib3 + its model
  deserializer: an object per field).

The SDK pins urllib3 ~=1.26 and certifi <= 2025.4.26, against the project's urllib3 2.8
and certifi 2026 (constraints.txt): it cannot live in the project's environment, so it
runs from a separate virtualenv given by ``--sdk-python`` (made with
``python -m venv V && V/bin/pip install ntnx-vmm-py-client==4.3.2``). Usage::

    python -m benchmarks.v4_library --vms 2000 --sdk-python /tmp/sdk-venv/bin/python
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer

# Runs inside the SDK's virtualenv: only the SDK and the standard library.
SDK_WORKER = textwrap.dedent('''
    import json, sys, time, tracemalloc, resource
    import ntnx_vmm_py_client as sdk
    from ntnx_vmm_py_client.api import VmApi
    host, port, pages, memory = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    config = sdk.Configuration()
    config.host, config.port, config.scheme = host, port, "http"
    config.username, config.password = "admin", "nutanix/4u"
    config.verify_ssl = False
    api = VmApi(api_client=sdk.ApiClient(configuration=config))
    api.list_vms(_page=0, _limit=1)  # negotiation and the connection, outside the measure
    if memory:
        tracemalloc.start()
    start = time.perf_counter()
    n, kept = 0, []
    for page in range(pages):
        answer = api.list_vms(_page=page, _limit=100)
        n += len(answer.data or [])
        kept.append(answer)  # a page is held while its VMs are used, as the pipeline does
        if len(kept) > 1:
            kept.pop(0)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if memory else 0
    print(json.dumps({"vms": n, "seconds": elapsed, "peak_bytes": peak,
                      "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
''')

OWN_WORKER = textwrap.dedent('''
    import json, sys, time, tracemalloc, resource
    from connectors.prism import PrismCredentials
    from connectors.prism_v4 import PrismV4Client
    from transforms.sources import v4_shapes
    host, port, pages, memory, convert = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1",
                                          sys.argv[5] == "1")
    client = PrismV4Client("bench", PrismCredentials(host=host, port=port, username="admin",
                                                     password="nutanix/4u", scheme="http"),
                           rate_per_s=1e6, version="v4.3")
    client.negotiate()
    lookups = v4_shapes.Lookups.build(client.list_all("cluster"), client.list_all("host"),
                                      client.list_all("subnet"), client.list_all("storage_container"),
                                      client.list_all("category")) if convert else None
    client.list_v4("vm", 0, 1)
    if memory:
        tracemalloc.start()
    start = time.perf_counter()
    n, kept = 0, []
    for page in range(pages):
        got = client.list_v4("vm", page, 100).entities
        if convert:
            got = [v4_shapes.vm_to_v3(vm, lookups) for vm in got]
        n += len(got)
        kept.append(got)
        if len(kept) > 1:
            kept.pop(0)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if memory else 0
    print(json.dumps({"vms": n, "seconds": elapsed, "peak_bytes": peak,
                      "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
''')


def _run(python: str, code: str, args: list[str]) -> dict:
    out = subprocess.run([python, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(vms: int, sdk_python: str | None, repeats: int) -> dict:
    pc = generate_fleet(FleetSpec(vms=vms, seed=3))[0]
    pages = -(-vms // 100)
    results: dict = {}
    with PrismServer(pc, v4_version="v4.3") as srv:  # the SDK 4.3.2 asks for v4.3 paths
        host, port = srv.host, str(srv.port)
        ways = [("own", sys.executable, OWN_WORKER, ["0"]), ("own+convert", sys.executable, OWN_WORKER, ["1"])]
        if sdk_python:
            ways.append(("sdk", sdk_python, SDK_WORKER, []))
        for name, python, code, extra in ways:
            times = [_run(python, code, [host, port, str(pages), "0", *extra])["seconds"] for _ in range(repeats)]
            mem = _run(python, code, [host, port, str(pages), "1", *extra])
            results[name] = {"vms": mem["vms"], "seconds_best": round(min(times), 3),
                             "ms_per_page": round(min(times) / pages * 1000, 2),
                             "peak_mib_two_pages": round(mem["peak_bytes"] / 2**20, 2),
                             "maxrss_mib": round(mem["maxrss_kib"] / 1024, 1)}
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sdk-python", default=None, help="python of a virtualenv holding ntnx-vmm-py-client")
    args = ap.parse_args(argv)
    results = measure(args.vms, args.sdk_python, args.repeats)
    print(f"\n=== v4 library: {args.vms} VMs in pages of 100, best of {args.repeats} (time), tracemalloc peak ===")
    print(f"{'way':<12} {'VMs':>6} {'s':>8} {'ms/page':>9} {'peak MiB':>9} {'maxrss MiB':>11}")
    for name, r in results.items():
        print(f"{name:<12} {r['vms']:>6} {r['seconds_best']:>8} {r['ms_per_page']:>9} "
              f"{r['peak_mib_two_pages']:>9} {r['maxrss_mib']:>11}")
    if "sdk" in results:
        sdk, own = results["sdk"], results["own"]
        print(f"sdk / own: time {sdk['seconds_best'] / own['seconds_best']:.2f}x, "
              f"peak memory {sdk['peak_mib_two_pages'] / max(own['peak_mib_two_pages'], 1e-9):.2f}x")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
