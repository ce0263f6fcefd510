"""cost_analysis.v1 Cost.analyze: the TimeSeriesAnalyzeQuery subset callers need.

Supports granularity DAILY / MONTHLY / YEARLY / ACCUMULATED (unset: the
``core.v2`` enum has no ACCUMULATED value) over
``billed_date`` / ``billed_month`` / ``billed_year`` (start and end inclusive,
as the cost-analysis service applies them), ``group_by`` (keys or
``{key, name}``), ``fields`` (``{name: {key, operator: sum|count|max|min|average}}``),
``field_group`` (pivot into ``[{date, value}]`` lists with ``_total_<field>``),
``filter`` / ``filter_or``, ``sort`` and ``page``. Non-accumulated rows carry ``date``.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import grpc
from google.protobuf import struct_pb2
from spaceone.api.cost_analysis.v1 import cost_pb2

from . import query
from .auth import Claims
from .base import query_dict, request_filters, rpc, scope_filters
from .cost_service import CostService
from .errors import ApiError
from .store import COSTS

DATE_FIELD = {"DAILY": "billed_date", "MONTHLY": "billed_month", "YEARLY": "billed_year"}
_OPS = ("sum", "count", "max", "min", "average")


def _bad(reason: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"ERROR_INVALID_PARAMETER: key = query, reason = {reason}")


def _date_field(granularity: str, start: str, date_fields: dict[str, str] = DATE_FIELD) -> str:
    if granularity in date_fields:
        return date_fields[granularity]
    return {4: date_fields["YEARLY"], 7: date_fields["MONTHLY"]}.get(len(start), date_fields["DAILY"])


def _group_keys(group_by: list | None) -> list[tuple[str, str]]:
    out = []
    for g in group_by or []:
        if isinstance(g, dict):
            out.append((str(g["key"]), str(g.get("name") or g["key"].split(".")[-1])))
        else:
            out.append((str(g), str(g).split(".")[-1]))
    return out


def _first(doc: dict, key: str) -> Any:
    values = query.get_values(doc, key)
    return values[0] if values else None


def check_fields(fields: Any) -> dict:
    """``{name: {key, operator}}`` as python-core's MongoModel._check_condition wants it."""
    if not fields or not isinstance(fields, dict):
        raise _bad("fields is required, e.g. {'cost': {'key': 'cost', 'operator': 'sum'}}")
    for name, spec in fields.items():
        if not isinstance(spec, dict) or spec.get("operator", "sum") not in _OPS:
            raise _bad(f"fields.{name}: operator must be one of {list(_OPS)}")
        if spec.get("operator", "sum") != "count" and not spec.get("key"):
            raise _bad(f"fields.{name}: key is required")
    return fields


def aggregate(docs: Iterable[dict], groups: list[tuple[str, str]], fields: dict,
              date_field: str | None = None) -> list[dict]:
    """One row per distinct group (and ``date_field`` value): each group by its name, each field
    by its operator over the numbers it reaches (a group key that reaches nothing is None)."""
    acc: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for doc in docs:
        key = tuple(_first(doc, k) for k, _ in groups)
        if date_field:
            key += (doc.get(date_field),)
        for name, f in fields.items():
            acc[key][name].append(1 if f.get("operator") == "count" else _first(doc, f["key"]))
    rows = []
    for key, per_field in acc.items():
        row = {name: key[i] for i, (_, name) in enumerate(groups)}
        if date_field:
            row["date"] = key[-1]
        for name, f in fields.items():
            nums = [v for v in per_field[name] if isinstance(v, (int, float)) and not isinstance(v, bool)]
            op = f.get("operator", "sum")
            row[name] = (sum(nums) if op in ("sum", "count") else max(nums, default=None) if op == "max"
                         else min(nums, default=None) if op == "min" else (sum(nums) / len(nums) if nums else None))
        rows.append(row)
    return rows


def analyze(docs: list[dict], qd: dict, extra: list[dict], date_fields: dict[str, str] = DATE_FIELD) -> dict:
    """``date_fields``: the record's date key per granularity (costs: billed_date, ...)."""
    granularity = str(qd.get("granularity") or "ACCUMULATED")
    if granularity == "GRANULARITY_NONE":  # the v2 proto enum has no ACCUMULATED: unset means accumulated
        granularity = "ACCUMULATED"
    if granularity not in (*date_fields, "ACCUMULATED"):
        raise _bad(f"granularity {granularity!r} is not supported")
    start, end = str(qd.get("start") or ""), str(qd.get("end") or "")
    if not start or not end:
        raise _bad("start and end are required")
    date_field = _date_field(granularity, start, date_fields)
    fields = check_fields(qd.get("fields"))
    spec = query.parse({"filter": qd.get("filter", []), "filter_or": qd.get("filter_or", [])},
                       [*extra, {"k": date_field, "v": start, "o": "gte"}, {"k": date_field, "v": end, "o": "lte"}])
    groups = _group_keys(qd.get("group_by"))
    rows = aggregate(query.select(docs, spec), groups, fields,
                     date_field if granularity != "ACCUMULATED" else None)
    field_group = list(qd.get("field_group") or [])
    if field_group:
        rows = _pivot(rows, field_group, list(fields))
    sort = qd.get("sort") or [{"key": "date" if granularity != "ACCUMULATED" and not field_group else
                               (f"_total_{next(iter(fields))}" if field_group else next(iter(fields))),
                               "desc": bool(field_group) or granularity == "ACCUMULATED"}]
    query.sort_docs(rows, [(s["key"], bool(s.get("desc", False))) for s in sort])
    page = qd.get("page") or {}
    start_i, limit = max(int(page.get("start", 1) or 1), 1), int(page.get("limit", 0) or 0)
    paged = query.page(rows, start_i, limit)
    return {"results": paged, "more": bool(limit) and start_i - 1 + limit < len(rows)}


def _pivot(rows: list[dict], field_group: list[str], names: list[str]) -> list[dict]:
    out: dict[tuple, dict] = {}
    for row in rows:
        keep = {k: v for k, v in row.items() if k not in field_group and k not in names}
        target = out.setdefault(tuple(sorted(keep.items(), key=lambda kv: kv[0])), {**keep})
        for name in names:
            target.setdefault(name, []).append({**{g: row.get(g) for g in field_group}, "value": row[name]})
            target[f"_total_{name}"] = target.get(f"_total_{name}", 0) + (row[name] or 0)
    return list(out.values())


class CostAnalysisCostService(CostService):
    """The core Cost service plus ``analyze``."""

    @rpc("Cost.analyze")
    def analyze(self, request: cost_pb2.CostAnalyzeQuery, claims: Claims) -> struct_pb2.Struct:
        extra = [*scope_filters(claims), *request_filters(request)]
        result = analyze(self.store.scan(COSTS), query_dict(request), extra)
        out = struct_pb2.Struct()
        out.update(result)
        return out
