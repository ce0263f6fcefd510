"""Fast message <-> JSON-dict conversion for the hot paths.

``json_format.MessageToDict``/``ParseDict`` cost ~300 us per cloud service
round trip, which alone would cap the emulator far below the ~2,000 creates/s
it must sustain. These converters produce the same shapes as
``MessageToDict(..., preserving_proto_field_name=True)`` for what the
emulator uses (proto field names, enum names, Struct/ListValue/Value as plain
JSON, numbers inside Struct as floats), except that 64-bit integers stay ints
and bytes are not base64-encoded. Unknown keys and enum names are ignored when
parsing (like ``ignore_unknown_fields=True``).
"""
from __future__ import annotations

import functools
from typing import Any, TypeVar

from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

_STRUCT = "google.protobuf.Struct"
_LIST_VALUE = "google.protobuf.ListValue"
_VALUE = "google.protobuf.Value"
_INT_TYPES = frozenset({
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
})
_FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})


def value_to_py(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_py(value.struct_value)
    if kind == "list_value":
        return [value_to_py(v) for v in value.list_value.values]
    return None


def struct_to_py(struct: struct_pb2.Struct) -> dict:
    return {k: value_to_py(v) for k, v in struct.fields.items()}


@functools.lru_cache(maxsize=None)
def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


@functools.lru_cache(maxsize=None)
def _is_plain_scalar(fd: FieldDescriptor) -> bool:
    """Singular string/bool/number field: the common case, set without coercion checks."""
    return fd.message_type is None and fd.enum_type is None and not fd.is_repeated


def _message_value_to_py(fd: FieldDescriptor, value: Any, with_defaults: bool) -> Any:
    name = fd.message_type.full_name
    if name == _STRUCT:
        return struct_to_py(value)
    if name == _LIST_VALUE:
        return [value_to_py(v) for v in value.values]
    if name == _VALUE:
        return value_to_py(value)
    return message_to_dict(value, with_defaults)


def _field_to_py(fd: FieldDescriptor, value: Any, with_defaults: bool) -> Any:
    if _is_map(fd):
        value_fd = fd.message_type.fields_by_name["value"]
        return {k: _single_to_py(value_fd, v, with_defaults) for k, v in value.items()}
    if fd.is_repeated:
        return [_single_to_py(fd, v, with_defaults) for v in value]
    return _single_to_py(fd, value, with_defaults)


def _single_to_py(fd: FieldDescriptor, value: Any, with_defaults: bool) -> Any:
    if fd.message_type is not None:
        return _message_value_to_py(fd, value, with_defaults)
    if fd.enum_type is not None:
        enum_value = fd.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    return value


def message_to_dict(msg: Message, with_defaults: bool = False) -> dict:
    """Set fields of ``msg`` as a dict; ``with_defaults`` adds unset scalars/lists without presence."""
    if msg.DESCRIPTOR.full_name == _STRUCT:
        return struct_to_py(msg)
    if not with_defaults:
        return {fd.name: _field_to_py(fd, value, False) for fd, value in msg.ListFields()}
    out: dict = {}
    for fd in msg.DESCRIPTOR.fields:
        if fd.has_presence and not msg.HasField(fd.name):
            continue
        out[fd.name] = _field_to_py(fd, getattr(msg, fd.name), True)
    return out


def _py_to_value(target: struct_pb2.Value, data: Any) -> None:
    if data is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):
        target.bool_value = data
    elif isinstance(data, (int, float)):
        target.number_value = data
    elif isinstance(data, str):
        target.string_value = data
    elif isinstance(data, dict):
        target.struct_value.SetInParent()
        target.struct_value.update(data)
    elif isinstance(data, (list, tuple)):
        target.list_value.SetInParent()
        target.list_value.extend(data)
    else:
        target.string_value = str(data)


def _coerce_scalar(fd: FieldDescriptor, data: Any) -> Any:
    if fd.enum_type is not None:
        if isinstance(data, str):
            enum_value = fd.enum_type.values_by_name.get(data)
            return enum_value.number if enum_value is not None else None
        return int(data)
    if fd.type in _INT_TYPES:
        return int(data)
    if fd.type in _FLOAT_TYPES:
        return float(data)
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return bool(data)
    if fd.type == FieldDescriptor.TYPE_STRING:
        return data if isinstance(data, str) else str(data)
    return data


def _fill_message_field(fd: FieldDescriptor, target: Message, data: Any) -> None:
    name = fd.message_type.full_name
    target.SetInParent()
    if name == _STRUCT:
        if isinstance(data, dict):
            target.update(data)
    elif name == _LIST_VALUE:
        if isinstance(data, (list, tuple)):
            target.extend(data)
    elif name == _VALUE:
        _py_to_value(target, data)
    elif isinstance(data, dict):
        fill(target, data)


def fill(msg: Message, doc: dict) -> Message:
    """Set the fields of ``msg`` from ``doc``; unknown keys and None values are skipped."""
    fields = msg.DESCRIPTOR.fields_by_name
    for key, data in doc.items():
        fd = fields.get(key)
        if fd is None:
            continue
        if _is_plain_scalar(fd):
            if data is not None:
                try:
                    setattr(msg, key, data)
                except (TypeError, ValueError):
                    setattr(msg, key, _coerce_scalar(fd, data))
            continue
        if data is None and (fd.message_type is None or fd.message_type.full_name != _VALUE):
            continue
        if _is_map(fd):
            container = getattr(msg, key)
            value_fd = fd.message_type.fields_by_name["value"]
            for k, v in data.items():
                if value_fd.message_type is not None:
                    _fill_message_field(value_fd, container[k], v)
                else:
                    container[k] = _coerce_scalar(value_fd, v)
        elif fd.is_repeated:
            container = getattr(msg, key)
            if fd.message_type is not None:
                for item in data:
                    _fill_message_field(fd, container.add(), item)
            else:
                container.extend(v for v in (_coerce_scalar(fd, x) for x in data) if v is not None)
        elif fd.message_type is not None:
            _fill_message_field(fd, getattr(msg, key), data)
        else:
            value = _coerce_scalar(fd, data)
            if value is not None:
                setattr(msg, key, value)
    return msg


def dict_to_message(doc: dict, cls: type[M]) -> M:
    return fill(cls(), doc)
