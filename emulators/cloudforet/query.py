"""One generic query engine over JSON documents, shared by every ``list``.

Implements the parts of ``spaceone.api.core.v2.Query`` the project relies on:
``filter`` / ``filter_or`` (``{k|key, v|value, o|operator}`` on dotted keys,
Mongo-like semantics: a key that crosses a list matches any element),
``sort``, ``page`` (1-based start), ``only``, ``count_only`` and ``keyword``;
plus ``distinct`` for stat queries. Keeping a single implementation means
every service filters, sorts and pages identically.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import grpc

from .errors import ApiError

_MISSING = object()


def _query_error(reason: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"ERROR_DB_QUERY: reason = {reason}")


@dataclass(frozen=True)
class Condition:
    """One normalised filter item."""

    key: str
    value: Any
    op: str


@dataclass
class QuerySpec:
    """A parsed query: what to keep, in which order, which page and fields."""

    filters: list[Condition] = field(default_factory=list)
    filter_or: list[Condition] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    start: int = 1
    limit: int = 0
    only: list[str] = field(default_factory=list)
    count_only: bool = False
    keyword: str = ""
    distinct: str = ""

    def mentions(self, key: str) -> bool:
        """Whether any filter (and/or) is on ``key``."""
        return any(c.key == key for c in [*self.filters, *self.filter_or])

    def lookup_values(self, key: str) -> list[Any] | None:
        """Values of an AND ``eq``/``in`` filter on ``key`` (for index use), else None."""
        for cond in self.filters:
            if cond.key != key:
                continue
            if cond.op == "eq" and not isinstance(cond.value, (list, dict)) and cond.value is not None:
                return [cond.value]
            if cond.op == "in":
                return list(cond.value) if isinstance(cond.value, list) else [cond.value]
        return None


def plain_eq(spec: QuerySpec, keys: frozenset[str]) -> list[tuple[str, str]] | None:
    """``[(key, value)]`` when the selection is nothing but ``eq`` on string ``keys``
    (fields that hold one string in every document, so SQL equality is exact), else None."""
    if spec.filter_or or spec.keyword or spec.distinct:
        return None
    if not all(c.op == "eq" and c.key in keys and isinstance(c.value, str) for c in spec.filters):
        return None
    return [(c.key, c.value) for c in spec.filters]


def condition(item: dict) -> Condition:
    key = item.get("k", item.get("key"))
    if not key:
        raise _query_error("filter item needs k/key")
    op = item.get("o", item.get("operator")) or "eq"
    if op not in _OPERATORS:
        raise _query_error(f"unsupported filter operator {op!r}")
    value = item.get("v", item.get("value"))
    return Condition(key=str(key), value=value, op=op)


def parse(query: dict | None, extra: Iterable[dict] = ()) -> QuerySpec:
    """Build a QuerySpec from a Query/StatisticsQuery dict plus extra AND filters.

    ``query`` is ``MessageToDict(request.query, preserving_proto_field_name=True)``.
    """
    query = query or {}
    spec = QuerySpec()
    spec.filters = [condition(i) for i in [*query.get("filter", []), *extra]]
    spec.filter_or = [condition(i) for i in query.get("filter_or", [])]
    for item in query.get("sort", []):
        if not item.get("key"):
            raise _query_error("sort item needs key")
        spec.sort.append((item["key"], bool(item.get("desc", False))))
    page = query.get("page") or {}
    spec.start = max(int(page.get("start", 1) or 1), 1)
    spec.limit = max(int(page.get("limit", 0) or 0), 0)
    spec.only = list(query.get("only", []))
    spec.count_only = bool(query.get("count_only", False))
    spec.keyword = str(query.get("keyword", "") or "")
    spec.distinct = str(query.get("distinct", "") or "")
    return spec


# -- value access -------------------------------------------------------------

def get_values(doc: Any, key: str) -> list[Any]:
    """All values at dotted ``key``; empty if absent. Lists are traversed."""
    current = [doc]
    for part in key.split("."):
        nxt: list[Any] = []
        for node in current:
            if isinstance(node, dict):
                if part in node:
                    nxt.append(node[part])
            elif isinstance(node, list):
                for elem in node:
                    if isinstance(elem, dict) and part in elem:
                        nxt.append(elem[part])
        current = nxt
        if not current:
            return []
    return current


def _candidates(values: list[Any]) -> list[Any]:
    """Values plus the elements of list values (a list field matches per element)."""
    out: list[Any] = []
    for v in values:
        out.append(v)
        if isinstance(v, list):
            out.extend(v)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


def _as_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _eq(vals: list[Any], v: Any) -> bool:
    if v is None:
        return not vals or any(x is None for x in vals)
    return any(_same(x, v) for x in _candidates(vals))


def _in(vals: list[Any], v: Any) -> bool:
    cands = _candidates(vals)
    return any(_same(x, w) for w in _as_list(v) for x in cands)


def _contain(vals: list[Any], v: Any) -> bool:
    needle = str(v).lower()
    return any(isinstance(x, str) and needle in x.lower() for x in _candidates(vals))


def _compare(pred: Callable[[Any, Any], bool]) -> Callable[[list[Any], Any], bool]:
    def op(vals: list[Any], v: Any) -> bool:
        return any(_comparable(x, v) and pred(x, v) for x in _candidates(vals))
    return op


def _dt_compare(pred: Callable[[datetime, datetime], bool]) -> Callable[[list[Any], Any], bool]:
    def op(vals: list[Any], v: Any) -> bool:
        ref = _as_datetime(v)
        if ref is None:
            raise _query_error(f"datetime operator needs an ISO-8601 value, got {v!r}")
        return any((d := _as_datetime(x)) is not None and pred(d, ref) for x in _candidates(vals))
    return op


_OPERATORS: dict[str, Callable[[list[Any], Any], bool]] = {
    "eq": _eq,
    "not": lambda vals, v: not _eq(vals, v),
    "in": _in,
    "not_in": lambda vals, v: not _in(vals, v),
    "contain": _contain,
    "not_contain": lambda vals, v: not _contain(vals, v),
    "contain_in": lambda vals, v: any(_contain(vals, w) for w in _as_list(v)),
    "not_contain_in": lambda vals, v: not any(_contain(vals, w) for w in _as_list(v)),
    "gt": _compare(lambda a, b: a > b),
    "gte": _compare(lambda a, b: a >= b),
    "lt": _compare(lambda a, b: a < b),
    "lte": _compare(lambda a, b: a <= b),
    "exists": lambda vals, v: bool(vals) == bool(True if v is None else v),
    "datetime_gt": _dt_compare(lambda a, b: a > b),
    "datetime_gte": _dt_compare(lambda a, b: a >= b),
    "datetime_lt": _dt_compare(lambda a, b: a < b),
    "datetime_lte": _dt_compare(lambda a, b: a <= b),
}


def matches(doc: dict, cond: Condition) -> bool:
    return _OPERATORS[cond.op](get_values(doc, cond.key), cond.value)


def _has_keyword(node: Any, needle: str) -> bool:
    if isinstance(node, str):
        return needle in node.lower()
    if isinstance(node, dict):
        return any(_has_keyword(v, needle) for v in node.values())
    if isinstance(node, list):
        return any(_has_keyword(v, needle) for v in node)
    return False


def predicate(cond: Condition) -> Callable[[dict], bool]:
    """``matches(doc, cond)`` as a function of ``doc``. Equality with strings takes a set:
    a lookup of 200 references tried every document against all 200 (most of a
    lookup's time). The same answers: a string only ever equals a string."""
    if cond.op in ("eq", "in"):
        wanted = cond.value if isinstance(cond.value, list) and cond.op == "in" else [cond.value]
        if wanted and all(isinstance(w, str) for w in wanted):
            strings = frozenset(wanted)
            key = cond.key
            return lambda doc: any(isinstance(x, str) and x in strings for x in _candidates(get_values(doc, key)))
    return lambda doc: matches(doc, cond)


def select(docs: Iterable[dict], spec: QuerySpec) -> list[dict]:
    """Documents that pass the filters, filter_or and keyword."""
    needle = spec.keyword.lower()
    every = [predicate(c) for c in spec.filters]
    either = [predicate(c) for c in spec.filter_or]
    out = []
    for doc in docs:
        if not all(p(doc) for p in every):
            continue
        if either and not any(p(doc) for p in either):
            continue
        if needle and not _has_keyword(doc, needle):
            continue
        out.append(doc)
    return out


# -- sort / page / only ---------------------------------------------------------

def _sort_key(value: Any) -> tuple:
    """Total order across types: missing/None < bool < numbers < strings < others."""
    if value is _MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, repr(value))


def _first(doc: dict, key: str) -> Any:
    vals = get_values(doc, key)
    return vals[0] if vals else _MISSING


def sort_docs(docs: list[dict], sort: list[tuple[str, bool]]) -> list[dict]:
    for key, desc in reversed(sort):  # stable sorts, least significant key first
        docs.sort(key=lambda d: _sort_key(_first(d, key)), reverse=desc)
    return docs


def page(items: list[Any], start: int, limit: int) -> list[Any]:
    begin = max(start, 1) - 1
    return items[begin:begin + limit] if limit else items[begin:]


def project(doc: dict, only: list[str], id_key: str) -> dict:
    """A copy of ``doc`` with just the ``only`` (dotted) keys and the id."""
    out: dict = {}
    for key in [id_key, *only]:
        parts = key.split(".")
        src: Any = doc
        for part in parts:
            if not isinstance(src, dict) or part not in src:
                src = _MISSING
                break
            src = src[part]
        if src is _MISSING:
            continue
        dst = out
        for part in parts[:-1]:
            dst = dst.setdefault(part, {})
        dst[parts[-1]] = src
    return out


def selection_key(spec: QuerySpec) -> str:
    """What decides the selection and its order (not the page nor the fields)."""
    return repr((spec.filters, spec.filter_or, spec.sort, spec.keyword))


def select_sorted(docs: Iterable[dict], spec: QuerySpec) -> list[dict]:
    selected = select(docs, spec)
    if spec.sort:
        sort_docs(selected, spec.sort)
    return selected


def run(docs: Iterable[dict], spec: QuerySpec, id_key: str, selected: list[dict] | None = None
        ) -> tuple[list[dict], int]:
    """Filter, sort, page and project; returns (results, total_count before paging).

    ``selected``: the filtered, sorted documents when the caller has them already.
    """
    if selected is None:
        selected = select_sorted(docs, spec)
    total = len(selected)
    if spec.count_only:
        return [], total
    results = page(selected, spec.start, spec.limit)
    if spec.only:
        results = [project(d, spec.only, id_key) for d in results]
    return results, total


def distinct(docs: Iterable[dict], spec: QuerySpec) -> tuple[list[Any], int]:
    """Sorted distinct values of ``spec.distinct`` over the filtered docs, paged."""
    seen: dict[str, Any] = {}
    for doc in select(docs, spec):
        for value in _candidates(get_values(doc, spec.distinct)):
            if value is None or isinstance(value, (list, dict)):
                continue
            seen.setdefault(repr(value), value)
    values = sorted(seen.values(), key=_sort_key)
    return page(values, spec.start, spec.limit), len(values)
