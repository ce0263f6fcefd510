"""Nutanix -> CloudForet collector.

Installed as a package so the same code runs on the local runner, on Flink and
on Dataflow workers (``--setup_file ./setup.py``). The metadata, the pinned
dependencies and the package list are in pyproject.toml; this file only hands
them to setuptools.
"""
from setuptools import setup

setup()
