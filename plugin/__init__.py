"""CloudForet data-source plugins (monitoring + cost) serving what the pipeline writes.

CloudForet has no RPC that writes metrics, and current servers refuse
``Cost.create``: both services pull from registered plugins. This package is
that plugin, reading the Parquet metric and cost stores: one gRPC server per
protocol, each with server reflection, as CloudForet's servers need to call
it (``python -m plugin monitoring|cost``; see ``server``).
"""
