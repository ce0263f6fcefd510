"""The inventory collector plugin: CloudForet's Inventory runs it (``python -m plugin collector``).

Unlike the monitoring and cost plugins (which serve what the pipeline wrote),
this one reads Prism itself, for the service account whose secret Inventory
passes, with the pipeline's own reading and normalization
(``transforms/sources/prism.py`` FetchPages and split_page,
``transforms/stages/normalize.py``) and streams ``ResourceInfo`` back;
Inventory upserts them, counts them in a JobTask, keeps the provider's tags and
deletes what later jobs no longer see. See ``plugin/collector/tasks.py`` for
how one Prism Central is split into tasks.
"""
