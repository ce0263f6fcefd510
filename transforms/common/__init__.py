"""Plumbing the sources, stages and sinks share: credentials, canonical JSON, files, progress."""
