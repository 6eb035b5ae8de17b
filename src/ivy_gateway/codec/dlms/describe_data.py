"""JSON-able descriptions of plain xDLMS service APDUs, in the shape of ``dlms.json``.

Used by ``ivy-gateway decode`` and by the vector tests: keys and value formats follow the
``decoded`` objects of tests/vectors/dlms.json (hex uppercase, structures as lists,
octet-strings and date-times as hex, bit-strings as ``"1000000001"``).
"""

from __future__ import annotations

from typing import Any

from .apdu.action import ActionRequestNormal
from .apdu.common import CosemAttributeDescriptor, SelectiveAccess
from .apdu.exception import ConfirmedServiceError, ExceptionResponse
from .apdu.get import (
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
)
from .apdu.notification import DataNotification, EventNotificationRequest
from .apdu.set import (
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetRequestWithList,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseNormal,
    SetResponseWithList,
)
from .apdu.xdlms import ServiceApdu, decode_service_apdu
from .axdr import BitString, CompactArray, Data, DataType, encode_data, encode_length
from .clock import CosemDate, CosemDateTime, CosemTime
from .enums import DataAccessResult

__all__ = ["describe_data", "describe_service_apdu", "describe_value"]

_LENGTH_PREFIXED = {
    DataType.ARRAY,
    DataType.STRUCTURE,
    DataType.OCTET_STRING,
    DataType.VISIBLE_STRING,
    DataType.UTF8_STRING,
    DataType.BIT_STRING,
}


def describe_value(data: Data) -> Any:
    """The ``value`` field: plain JSON for one Data value."""
    value = data.value
    if type(value) is tuple:
        return [describe_value(item) for item in value]
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, CosemDateTime | CosemDate | CosemTime):
        return value.to_bytes().hex().upper()
    if isinstance(value, BitString):
        return str(value)
    if isinstance(value, CompactArray):
        return encode_data(data)[1:].hex().upper()
    return value


def describe_data(data: Data) -> dict[str, Any]:
    """``data_tag``, ``data_hex`` and ``value`` (plus ``length_encoding`` for long forms)."""
    raw = encode_data(data)
    out: dict[str, Any] = {"data_tag": int(data.tag), "data_hex": raw.hex().upper()}
    out["value"] = describe_value(data)
    if data.tag in _LENGTH_PREFIXED:
        length = encode_length(raw_length(raw))
        if len(length) > 1:
            out["length_encoding"] = length.hex().upper()
    return out


def raw_length(raw: bytes) -> int:
    """The length/count field of a length-prefixed encoded value."""
    first = raw[1]
    return first if first < 0x80 else int.from_bytes(raw[2 : 2 + (first & 0x7F)], "big")


def _hex(data: Data) -> str:
    return encode_data(data).hex().upper()


def _attribute(attribute: CosemAttributeDescriptor) -> dict[str, Any]:
    return {
        "class_id": attribute.class_id,
        "obis": str(attribute.obis),
        "attribute": attribute.attribute_id,
    }


def _access(access: SelectiveAccess | None) -> dict[str, Any]:
    if access is None:
        return {}
    return {"access_selector": access.selector, "access_parameters": _hex(access.parameters)}


def _result(result: Data | DataAccessResult) -> dict[str, Any]:
    if isinstance(result, DataAccessResult):
        return {"result": "data-access-result", "data_access_result": int(result)}
    return {"result": "data", **describe_data(result)}


def _list_result(result: Data | DataAccessResult) -> dict[str, Any]:
    if isinstance(result, DataAccessResult):
        return {"data_access_result": int(result)}
    return {"data_hex": _hex(result)}


def _describe(apdu: ServiceApdu) -> dict[str, Any]:
    if isinstance(apdu, ExceptionResponse):
        out: dict[str, Any] = {
            "apdu": "Exception-Response",
            "state_error": int(apdu.state_error),
            "service_error": int(apdu.service_error),
        }
        if apdu.invocation_counter is not None:
            out["invocation_counter"] = apdu.invocation_counter
        return out
    if isinstance(apdu, ConfirmedServiceError):
        return {
            "apdu": "Confirmed-Service-Error",
            "service": int(apdu.service),
            "error_choice": int(apdu.error_class),
            "error_value": apdu.error_value,
        }
    if isinstance(apdu, DataNotification):
        stamp = apdu.date_time
        return {
            "apdu": "Data-Notification",
            "long_invoke_id_and_priority": apdu.long_invoke_id_and_priority.value,
            "date_time": None if stamp is None else stamp.to_bytes().hex().upper(),
            "body_hex": _hex(apdu.body),
        }
    if isinstance(apdu, EventNotificationRequest):
        name = "Event-Notification-Request"
        out = {
            "apdu": name if apdu.standard else f"{name} (non-standard variant)",
            "time": None if apdu.time is None else apdu.time.to_bytes().hex().upper(),
            **_attribute(apdu.attribute),
            "value_hex": _hex(apdu.value),
        }
        if not apdu.standard:
            out["standard"] = False
        return out
    out = {"apdu": "", "invoke_id_and_priority": apdu.invoke_id_and_priority.value}
    if isinstance(apdu, GetRequestNormal):
        out["apdu"] = "GET-Request-Normal"
        out.update(_attribute(apdu.attribute), **_access(apdu.access))
    elif isinstance(apdu, GetRequestNext):
        out.update(apdu="GET-Request-Next", block_number=apdu.block_number)
    elif isinstance(apdu, GetRequestWithList):
        out.update(apdu="GET-Request-With-List", count=len(apdu.attributes))
    elif isinstance(apdu, GetResponseNormal):
        out["apdu"] = "GET-Response-Normal"
        out.update(_result(apdu.result))
    elif isinstance(apdu, GetResponseWithDatablock):
        out.update(
            apdu="GET-Response-With-Datablock",
            last_block=apdu.last_block,
            block_number=apdu.block_number,
        )
        if isinstance(apdu.raw_data, DataAccessResult):
            out["data_access_result"] = int(apdu.raw_data)
        else:
            out["raw_data"] = apdu.raw_data.hex().upper()
    elif isinstance(apdu, GetResponseWithList):
        out.update(
            apdu="GET-Response-With-List",
            count=len(apdu.results),
            results=[_list_result(r) for r in apdu.results],
        )
    elif isinstance(apdu, SetRequestNormal):
        out["apdu"] = "SET-Request-Normal"
        out.update(_attribute(apdu.attribute), **_access(apdu.access))
        out["value_hex"] = _hex(apdu.value)
    elif isinstance(apdu, SetRequestWithFirstDatablock | SetRequestWithDatablock):
        if isinstance(apdu, SetRequestWithFirstDatablock):
            out["apdu"] = "SET-Request-With-First-Datablock"
            out.update(_attribute(apdu.attribute), **_access(apdu.access))
        else:
            out["apdu"] = "SET-Request-With-Datablock"
        block = apdu.block
        out.update(
            last_block=block.last_block,
            block_number=block.block_number,
            raw_data=block.raw_data.hex().upper(),
        )
    elif isinstance(apdu, SetRequestWithList):
        out.update(
            apdu="SET-Request-With-List",
            count=len(apdu.attributes),
            values_hex=[_hex(v) for v in apdu.values],
        )
    elif isinstance(apdu, SetResponseNormal):
        out.update(apdu="SET-Response-Normal", data_access_result=int(apdu.result))
    elif isinstance(apdu, SetResponseDatablock):
        out.update(apdu="SET-Response-Datablock", block_number=apdu.block_number)
    elif isinstance(apdu, SetResponseLastDatablock):
        out.update(
            apdu="SET-Response-Last-Datablock",
            data_access_result=int(apdu.result),
            block_number=apdu.block_number,
        )
    elif isinstance(apdu, SetResponseWithList):
        out.update(apdu="SET-Response-With-List", results=[int(r) for r in apdu.results])
    elif isinstance(apdu, ActionRequestNormal):
        method = apdu.method
        out.update(
            apdu="ACTION-Request-Normal",
            class_id=method.class_id,
            obis=str(method.obis),
            method=method.method_id,
        )
        if apdu.parameters is not None:
            out["parameter_hex"] = _hex(apdu.parameters)
    else:
        out.update(apdu="ACTION-Response-Normal", action_result=int(apdu.result))
        returned = apdu.return_parameters
        if isinstance(returned, DataAccessResult):
            out["return_data_access_result"] = int(returned)
        else:
            out["return_parameters"] = None if returned is None else _hex(returned)
    return out


def describe_service_apdu(data: bytes) -> dict[str, Any]:
    """Decode a plain xDLMS service APDU and describe it; ``DecodeError`` if invalid."""
    return _describe(decode_service_apdu(data))
