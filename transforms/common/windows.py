"""What ``finish_bundle`` yields must carry its window: the pipeline's is the global one."""
from __future__ import annotations

from typing import Any

from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindows


def in_global_window(out: Any) -> Any:
    """An output of ``finish_bundle`` (a value or a ``TaggedOutput``) in the global window."""
    if isinstance(out, pvalue.TaggedOutput):
        return pvalue.TaggedOutput(out.tag, GlobalWindows.windowed_value(out.value))
    return GlobalWindows.windowed_value(out)
