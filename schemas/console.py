"""The console's view of each CloudServiceType: layouts kept as YAML, registered as ``metadata.view``.

The YAML files (``schemas/console/<Group>/<Type>.yaml``) are in CloudForet's collector layout
format, the one plugin-azure-inven-collector keeps in ``src/plugin/metadata/*/*.yaml``:
``search.fields``, ``table.sort`` / ``table.fields`` and ``tabs.N``, each field a one-key mapping
``{Display Name: record.key}`` plus options. :func:`to_metadata` converts one as CloudForet's own
converter does (cloudforet-io/inventory ``src/spaceone/inventory/plugin/collector/lib/
metadata_generator.py`` ``MetadataGenerator.generate_metadata``, called by
``lib/metadata.py convert_cloud_service_type_meta``, which the Azure plugin's
``make_cloud_service_type(metadata_path=...)`` uses): the same output shape, written here, with
a clear error for a layout it cannot convert instead of a KeyError.
"""
from __future__ import annotations

import base64
import copy
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Iterator

import yaml

from transforms.stages.normalize import CLOUD_SERVICE_TYPES, PROVIDER

RESOURCE_TYPE = "inventory.CloudService"
# What the console files each type under (the Azure plugin's labels: "Compute", "Server", "Storage", ...)
# and the icon it shows (tags.spaceone:icon): an SVG of schemas/console/icons, inlined as a data URL so
# the console needs no asset host.
TYPE_EXTRAS: dict[tuple[str, str], dict[str, Any]] = {
    ("Compute", "Instance"): {"labels": ["Compute", "Server"], "icon": "nutanix-vm.svg"},
    ("Storage", "Disk"): {"labels": ["Storage"], "icon": "nutanix-disk.svg"},
    ("Cluster", "Cluster"): {"labels": ["Compute", "Container"], "icon": "nutanix-cluster.svg"},
    ("Host", "Host"): {"labels": ["Compute", "Server"], "icon": "nutanix-host.svg"},
}

FIELD_TYPES = ("text", "enum", "size", "datetime", "list", "dict", "state", "badge")
SIZE_UNITS = ("BYTES", "KB", "MB", "GB", "TB", "PB")
# python-core's BACKGROUND_COLORS (inventory plugin/collector/model/field.py): black, white, a hue, or hue.N00
COLOR = re.compile(r"^(black|white|(gray|red|coral|yellow|green|blue|violet|peacock|indigo)(\.[1-9]00)?)$")
# The option keys a field item may carry beside its one "Name: key" entry.
FIELD_OPTIONS = {"type", "enums", "options", "is_optional", "default", "field_description", "source_unit",
                 "display_unit", "source_type", "source_format", "display_format", "data_type", "delimiter",
                 "sub_key", "text_color", "icon_image", "icon_color", "label"}
ENUM_OPTIONS = {"type", "text_color", "icon_image", "icon_color", "shape", "background_color", "label", "name"}


class LayoutError(ValueError):
    """A layout file the converter cannot turn into a console view; says which file and field."""


# -- loading ---------------------------------------------------------------------
def layout_path(group: str, name: str):
    return resources.files(__package__).joinpath("console", group, f"{name}.yaml")


@lru_cache(maxsize=None)
def _layout_text(group: str, name: str) -> str:
    path = layout_path(group, name)
    if not path.is_file():
        raise LayoutError(f"no console layout for {PROVIDER}.{group}.{name}: add schemas/console/{group}/{name}.yaml")
    return path.read_text(encoding="utf-8")


def load_layout(group: str, name: str) -> dict:
    """The YAML layout of a type (a fresh copy: conversion must not change the cached text's result)."""
    layout = yaml.safe_load(_layout_text(group, name))
    if not isinstance(layout, dict):
        raise LayoutError(f"schemas/console/{group}/{name}.yaml: the top level must be a mapping")
    return layout


def icon_url(file_name: str) -> str:
    svg = resources.files(__package__).joinpath("console", "icons", file_name).read_bytes()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


# -- conversion (CloudForet's MetadataGenerator output shape) --------------------------
def to_metadata(layout: dict, where: str = "layout") -> dict:
    """``{"view": {"search": [...], "table": {"layout": ...}, "sub_data": {"layouts": [...]}}}``."""
    layout = copy.deepcopy(layout)
    unknown = [k for k in layout if k not in ("search", "table", "widget") and not k.startswith("tabs.")]
    if unknown:
        raise LayoutError(f"{where}: unknown top-level keys {unknown} (a layout has search, table, tabs.N)")
    search = (layout.get("search") or {}).get("fields") or []
    table = layout.get("table") or {}
    view: dict[str, Any] = {
        "search": [_field(f, f"{where} search", is_search=True) for f in search],
        "table": {"layout": _table(table, where)},
        "sub_data": {"layouts": [_tab(tab, f"{where} tabs.{i}") for i, tab in _tabs(layout, where)]},
    }
    if layout.get("widget"):
        view["widget"] = layout["widget"]
    return {"view": view}


def _tabs(layout: dict, where: str) -> list[tuple[int, dict]]:
    tabs = []
    for key, tab in layout.items():
        if key.startswith("tabs."):
            index = key.split(".", 1)[1]
            if not index.isdigit() or not isinstance(tab, dict) or "name" not in tab:
                raise LayoutError(f"{where}: {key} must be tabs.<number> with a name")
            tabs.append((int(index), tab))
    return sorted(tabs, key=lambda t: t[0])


def _table(table: dict, where: str) -> dict:
    options: dict[str, Any] = {}
    if "sort" in table:
        sort = table["sort"]
        if not isinstance(sort, dict) or "key" not in sort:
            raise LayoutError(f"{where} table.sort: needs a key (and desc)")
        options["default_sort"] = {"key": sort["key"], "desc": bool(sort.get("desc", False))}
    if "fields" in table:
        options["fields"] = [_field(f, f"{where} table") for f in table["fields"]]
    return {"name": "Main Table", "type": "query-search-table", "options": options}


def _tab(tab: dict, where: str) -> dict:
    if "items" in tab:  # several layouts on one tab
        inner = [_single_view(item, f"{where} {tab['name']}", item.get("type")) for item in tab["items"]]
        return {"name": tab["name"], "type": tab.get("type", "list"), "options": {"layouts": inner}}
    return _single_view(tab, where, tab.get("type"))


def _single_view(view: dict, where: str, view_type: str | None) -> dict:
    if not view_type:
        raise LayoutError(f"{where} {view.get('name')}: a layout needs a type (item, table, ...)")
    options: dict[str, Any] = {}
    if "fields" in view:
        options["fields"] = [_field(f, f"{where} {view['name']}") for f in view["fields"]]
    for key in ("root_path", "unwind", "default_sort", "search"):
        if key in view:
            options[key] = view[key]
    return {"name": view["name"], "type": view_type, "options": options}


def _name_and_key(field: Any, where: str) -> tuple[str, str, dict]:
    if not isinstance(field, dict) or not field:
        raise LayoutError(f"{where}: a field must be a mapping {{Display Name: record.key, ...options}}")
    name = next(iter(field))
    key = field[name]
    if name in FIELD_OPTIONS or not isinstance(key, str) or not key:
        raise LayoutError(f"{where}: field {field!r} must start with 'Display Name: record.key'")
    extra = {k: v for k, v in field.items() if k != name}
    unknown = set(extra) - FIELD_OPTIONS
    if unknown:
        raise LayoutError(f"{where} {name}: unknown field options {sorted(unknown)}")
    return str(name), key, extra


def _field(field: Any, where: str, is_search: bool = False) -> dict:
    name, key, extra = _name_and_key(field, where)
    kind = extra.get("type", "text")
    if kind not in FIELD_TYPES:
        raise LayoutError(f"{where} {name}: type {kind!r} is not one of {', '.join(FIELD_TYPES)}")
    out: dict[str, Any] = {"name": name, "key": key, "type": kind}
    options: dict[str, Any] = dict(extra.get("options") or {})
    if is_search:
        if kind == "enum":  # MetadataGenerator._generate_search_enum_field: value -> {label}
            out["enums"] = {value: {"label": (spec or {}).get("label", value)}
                            for value, spec in _enum_items(extra.get("enums"), f"{where} {name}")}
        else:
            out["type"] = "text"
            if "data_type" in extra:
                out["data_type"] = extra["data_type"]
        return out
    for opt in ("is_optional", "field_description"):
        if opt in extra:
            options[opt] = extra[opt]
    if "default" in extra:
        options["default"] = str(extra["default"]) if kind == "text" else extra["default"]
    if kind == "text" and "data_type" in extra:
        out["data_type"] = extra["data_type"]
    elif kind == "size":
        for opt in ("source_unit", "display_unit"):
            if opt in extra:
                if extra[opt] not in SIZE_UNITS:
                    raise LayoutError(f"{where} {name}: {opt} {extra[opt]!r} is not one of {', '.join(SIZE_UNITS)}")
                options[opt] = extra[opt]
    elif kind == "datetime":
        if extra.get("source_type", "iso8601") not in ("iso8601", "timestamp"):
            raise LayoutError(f"{where} {name}: source_type must be iso8601 or timestamp")
        for opt in ("source_type", "source_format", "display_format"):
            if opt in extra:
                options[opt] = extra[opt]
    elif kind == "list":
        for opt in ("delimiter", "sub_key"):
            if opt in extra:
                options[opt] = extra[opt]
        options.setdefault("delimiter", " ")
    elif kind == "enum":
        options.update(_table_enums(extra.get("enums"), f"{where} {name}"))
    if options:
        out["options"] = options
    return out


def _enum_items(enums: Any, where: str) -> Iterator[tuple[str, dict | None]]:
    """``- VALUE: colour`` / ``- VALUE:`` plus options -> (value, options); a bare string is a value."""
    if not isinstance(enums, list) or not enums:
        raise LayoutError(f"{where}: an enum needs a list of enums")
    for item in enums:
        if isinstance(item, str):
            yield item, None
            continue
        if not isinstance(item, dict):
            raise LayoutError(f"{where}: enum item {item!r} must be 'VALUE: colour' or 'VALUE:' with options")
        values = [k for k in item if k not in ENUM_OPTIONS]
        if len(values) != 1:
            raise LayoutError(f"{where}: enum item {item!r} must name exactly one value")
        yield str(values[0]), item


def _color(value: Any, where: str) -> str:
    if not isinstance(value, str) or not COLOR.match(value):
        raise LayoutError(f"{where}: colour {value!r} is not a console colour (e.g. green.500, red.500, gray.400)")
    return value


def _table_enums(enums: Any, where: str) -> dict:
    """MetadataGenerator._generate_enum_field: each value -> a state (icon image and colour, text
    colour) or a badge (its colour as outline_color)."""
    out = {}
    for value, spec in _enum_items(enums, where):
        spec = spec or {}
        kind = spec.get("type", "badge")
        main = spec.get(value)
        if kind == "state":
            options: dict[str, Any] = {}
            icon = {}
            if spec.get("icon_image"):
                icon["image"] = spec["icon_image"]
            if main or spec.get("icon_color"):
                icon["color"] = _color(main or spec.get("icon_color"), f"{where} {value}")
            if spec.get("text_color"):
                options["text_color"] = _color(spec["text_color"], f"{where} {value}")
            if icon:
                options["icon"] = icon
            out[value] = {"type": "state", "options": options}
        elif kind == "badge":
            if not main:
                raise LayoutError(f"{where} {value}: a badge needs its colour ('{value}: green.500')")
            out[value] = {"type": "badge", "options": {"outline_color": _color(main, f"{where} {value}")}}
        else:
            raise LayoutError(f"{where} {value}: enum type {kind!r} is not state or badge")
        for opt in ("name", "label"):
            if opt in spec:
                out[value][opt] = spec[opt]
    return out


# -- the definitions the setup command and the pipeline register --------------------------
def cloud_service_type_definitions() -> list[dict]:
    """Every CloudServiceType the collector writes, as CloudServiceType.create takes it
    (name, group, provider, service_code, is_primary, is_major, resource_type, labels, tags, metadata)."""
    out = []
    for base in CLOUD_SERVICE_TYPES:
        group, name = base["group"], base["name"]
        extras = TYPE_EXTRAS[(group, name)]
        where = f"schemas/console/{group}/{name}.yaml"
        out.append({
            "name": name, "group": group, "provider": base["provider"],
            "service_code": base.get("service_code", ""),
            "is_primary": bool(base.get("is_primary", False)), "is_major": bool(base.get("is_major", False)),
            "resource_type": RESOURCE_TYPE,
            "labels": list(extras["labels"]),
            "tags": {"spaceone:icon": icon_url(extras["icon"])},
            "metadata": to_metadata(load_layout(group, name), where),
        })
    return out


def definition_of(definitions: Iterable[dict], group: str, name: str) -> dict:
    for d in definitions:
        if (d["group"], d["name"]) == (group, name):
            return d
    raise KeyError(f"no CloudServiceType {group}.{name}")


# -- what a layout names ----------------------------------------------------------------
def layout_keys(metadata: dict) -> list[tuple[str, str, str | None]]:
    """Every record key a converted layout names: (where, key, root_path). A field of a layout
    with a ``root_path`` is a key of each element of that list; ``sub_key`` of a list field is a
    key of each element of the field's own value; the sort key is a key too."""
    view = metadata["view"]
    out: list[tuple[str, str, str | None]] = []

    def add_fields(where: str, fields: list[dict], root: str | None) -> None:
        for f in fields:
            out.append((f"{where}: {f['name']}", f["key"], root))
            sub_key = (f.get("options") or {}).get("sub_key")
            if sub_key:
                base = f"{root}.{f['key']}" if root else f["key"]
                out.append((f"{where}: {f['name']} (sub_key)", sub_key, base))

    add_fields("search", view["search"], None)
    table = view["table"]["layout"]["options"]
    if "default_sort" in table:
        out.append(("table: default_sort", table["default_sort"]["key"], None))
    add_fields("table", table.get("fields", []), None)
    for tab in view["sub_data"]["layouts"]:
        for inner in tab["options"].get("layouts", [tab]):
            opts = inner["options"]
            root = opts.get("root_path")
            if root:
                out.append((f"tab {tab['name']}/{inner['name']}: root_path", root, None))
            add_fields(f"tab {tab['name']}/{inner['name']}", opts.get("fields", []), root)
    return out


_MISSING = object()


def values_at(record: Any, key: str) -> list:
    """The values ``key`` reaches in ``record``, a list stepped through as the console's (and
    MongoDB's) dotted keys are: ``data.nics.mac_address`` is every NIC's MAC. Empty: no such key."""
    values = [record]
    for part in key.split("."):
        nxt: list = []
        for v in values:
            if isinstance(v, list):
                nxt.extend(e[part] for e in v if isinstance(e, dict) and part in e)
            elif isinstance(v, dict) and part in v:
                nxt.append(v[part])
        values = nxt
    return values


def resolves(record: Any, key: str) -> bool | None:
    """True: ``key`` is there; False: it is not; None: the path runs through an empty list or
    mapping, so nothing can be said (a VM without messages, a powered-off VM's ``utilization``).
    Through a list, every element must have the rest of the key."""
    value = record
    parts = key.split(".")
    for i, part in enumerate(parts):
        if isinstance(value, list):
            if not value:
                return None
            found = [resolves(e, ".".join(parts[i:])) for e in value]
            if False in found:
                return False
            return True if True in found else None
        if not isinstance(value, dict):
            return False
        if part not in value:
            return None if not value else False
        value = value[part]
    return True


def missing_layout_keys(metadata: dict, records: list[dict], require_seen: bool = True) -> list[str]:
    """What a layout names that the records lack, as readable problems (empty: all there).

    Every record must have each key (or hold an empty list or mapping on its path); with
    ``require_seen`` at least one record must really hold it, so a key that only ever sits
    under something empty cannot hide. A ``root_path`` field is a key of each element of the list."""
    problems = []
    for where, key, root in layout_keys(metadata):
        seen = False
        for r in records:
            targets = [r] if root is None else _elements(r, root)
            for t in targets:
                found = resolves(t, key)
                if found is False:
                    label = r.get("name", r.get("resource_id", "?")) if isinstance(r, dict) else "?"
                    problems.append(f"{where}: {root + '[].' if root else ''}{key} is not in record {label}")
                    break
                seen = seen or bool(found)
            else:
                continue
            break
        if require_seen and records and not seen:
            problems.append(f"{where}: {root + '[].' if root else ''}{key} is in none of {len(records)} records")
    return problems


def _elements(record: dict, root: str) -> list:
    values = values_at(record, root)
    out: list = []
    for v in values:
        out.extend(v if isinstance(v, list) else [v])
    return out


# -- the console's table, as text (the demo prints it) -------------------------------------
def render_table(type_def: dict, cloud_services: list[dict], rows: int = 5, optional: bool = False,
                 total: int | None = None) -> str:
    """The main table as the console would show it: the layout's columns (optional ones only with
    ``optional``), rows sorted by the default sort, each value formatted by its field type;
    ``total``: how many there are, when ``cloud_services`` is only the first page."""
    table = type_def["metadata"]["view"]["table"]["layout"]["options"]
    fields = [f for f in table.get("fields", []) if optional or not (f.get("options") or {}).get("is_optional")]
    records = list(cloud_services)
    sort = table.get("default_sort")
    if sort:
        records.sort(key=lambda r: _sort_key(values_at(r, sort["key"])), reverse=bool(sort.get("desc")))
    header = ["Name", *(f["name"] for f in fields)]
    body = [[str(r.get("name", "")), *(format_value(f, r) for f in fields)] for r in records[:rows]]
    widths = [min(40, max(len(row[i]) for row in [header, *body])) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c[:w].ljust(w) for c, w in zip(cells, widths)).rstrip()

    title = (f"{type_def['provider']} {type_def['group']} / {type_def['name']}: "
             f"{len(records) if total is None else total} resources")
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, body)])


def _sort_key(values: list) -> tuple:
    v = values[0] if values else None
    return (v is None, isinstance(v, str), v if isinstance(v, (int, float)) else str(v if v is not None else ""))


def format_value(field: dict, record: dict) -> str:
    """One cell: a size with its unit, a list joined by its delimiter (through ``sub_key``), a dict
    as key=value, anything else as text."""
    values = values_at(record, field["key"])
    if not values:
        return ""
    value = values[0] if len(values) == 1 else values
    options = field.get("options") or {}
    kind = field["type"]
    if kind == "list":
        items = value if isinstance(value, list) else [value]
        if options.get("sub_key"):
            items = [x for item in items for x in values_at(item, options["sub_key"])]
        return str(options.get("delimiter", " ")).join(_text(i) for i in items)
    if kind == "size":
        return f"{_text(value)} {options.get('display_unit') or options.get('source_unit') or 'BYTES'}"
    if kind == "dict" and isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)
