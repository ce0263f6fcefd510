"""Sinks that write files, staged then committed: snapshots, the metric store, the cost store."""
