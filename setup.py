"""Nutanix -> CloudForet collector.

Installed as a package so the same code runs on the local runner, on Flink and
on Dataflow workers (``--setup_file ./setup.py``).
"""
from setuptools import find_packages, setup

setup(
    name="nutanix-cloudforet-collector",
    version="0.1.0",
    description="Apache Beam pipeline that collects Nutanix Prism Central into CloudForet",
    python_requires=">=3.10",
    packages=find_packages(include=["pipeline*", "transforms*", "connectors*", "schemas*", "emulators*", "plugin*"]),
    package_data={"schemas": ["*.json", "*.avsc"]},
    include_package_data=True,
    install_requires=[
        "apache-beam==2.77.0",
        "grpcio==1.85.3",
        # plugin servers answer reflection (CloudForet's SpaceConnector needs it); 1.81.1 is the
        # newest grpcio-reflection for protobuf 6 (1.82+ require protobuf>=7.35.1)
        "grpcio-reflection==1.81.1",
        "protobuf==6.33.6",
        "requests==2.34.2",
        "orjson==3.13.0",
        "fastavro==1.13.1",
        "cramjam==2.14.0",  # fastavro's snappy codec
        "pyarrow==25.0.1",
        "spaceone-api==2.0.435",
        "googleapis-common-protos==1.76.0",
        "PyYAML==6.0.4",
        "jsonschema==4.26.0",
        "cryptography==50.0.2",
    ],
    extras_require={"test": ["pytest==9.2.0"]},
    entry_points={"console_scripts": ["nutanix-cloudforet=pipeline.__main__:main"]},
)
