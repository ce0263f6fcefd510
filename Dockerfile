# Custom SDK container for Flink (--environment_type DOCKER --environment_config IMAGE,
# or `docker run IMAGE --worker_pool` for --environment_type EXTERNAL) and Dataflow
# (--sdk_container_image IMAGE): the collector and its pinned dependencies
# preinstalled, so workers start without installing anything. See README.md,
# "Running on Flink and Dataflow".
#
#   docker build -t REGISTRY/nutanix-cloudforet-collector:0.1.0 .
#   docker push REGISTRY/nutanix-cloudforet-collector:0.1.0
#
# The base image's Python (3.11) and Beam (2.77.0) must be those the job is
# launched with. The entrypoint stays the Beam SDK harness boot
# (/opt/apache/beam/boot): the runner starts it, not a user command.
FROM apache/beam_python3.11_sdk:2.77.0

# The collector alone (pyproject.toml): no emulator (a fake Prism with a default
# password, a token-signing fake CloudForet) is installed; every transitive
# version comes from constraints.txt.
COPY . /tmp/collector
RUN pip install --no-cache-dir -c /tmp/collector/constraints.txt /tmp/collector \
    && rm -rf /tmp/collector \
    && python -c "import importlib.util, apache_beam, pipeline, transforms, connectors, schemas, plugin; \
assert apache_beam.__version__ == '2.77.0', apache_beam.__version__; \
assert importlib.util.find_spec('emulators') is None, 'the SDK image must carry no emulator'"
