"""ACTION service APDUs, normal variants (Green Book xDLMS, dlms.md §E5)::

    ACTION-Request-Normal   C3 01 iid method-descriptor(9) 00 | 01 Data
    ACTION-Response-Normal  C7 01 iid action-result(1) 00
                                                       | 01 00 Data   (return data)
                                                       | 01 01 dar    (return data-access-result)

Note the choice byte after the "present" flag in the response; the reference JavaScript
gateway forgets it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import DecodeError
from ..axdr import Data, decode_data
from ..enums import ActionResult, DataAccessResult
from .common import (
    CosemMethodDescriptor,
    InvokeIdAndPriority,
    byte_at,
    check_end,
    check_header,
    decode_descriptor,
    enum_at,
    invoke_id_at,
    optional_data,
)
from .get import decode_data_result, encode_data_result
from .tags import ApduTag

__all__ = [
    "ActionRequestNormal",
    "ActionResponseNormal",
    "decode_action_request",
    "decode_action_response",
]


@dataclass(frozen=True, slots=True)
class ActionRequestNormal:
    invoke_id_and_priority: InvokeIdAndPriority
    method: CosemMethodDescriptor
    parameters: Data | None = None

    def to_bytes(self) -> bytes:
        head = bytes((ApduTag.ACTION_REQUEST, 1, self.invoke_id_and_priority.value))
        return head + self.method.to_bytes() + optional_data(self.parameters)


@dataclass(frozen=True, slots=True)
class ActionResponseNormal:
    invoke_id_and_priority: InvokeIdAndPriority
    result: ActionResult
    return_parameters: Data | DataAccessResult | None = None

    def to_bytes(self) -> bytes:
        head = bytes((ApduTag.ACTION_RESPONSE, 1, self.invoke_id_and_priority.value, self.result))
        if self.return_parameters is None:
            return head + b"\x00"
        return head + b"\x01" + encode_data_result(self.return_parameters)


def decode_action_request(buf: bytes | memoryview) -> ActionRequestNormal:
    """Decode a whole ACTION-Request-Normal APDU (``C3 01 …``)."""
    choice = check_header(buf, ApduTag.ACTION_REQUEST, "ACTION-Request")
    if choice != 1:
        raise DecodeError(f"unsupported ACTION-Request choice {choice}", offset=1)
    class_id, obis, method_id, offset = decode_descriptor(buf, 3)
    flag = byte_at(buf, offset)
    parameters: Data | None = None
    if flag == 1:
        parameters, offset = decode_data(buf, offset + 1)
    elif flag == 0:
        offset += 1
    else:
        raise DecodeError(f"parameters flag must be 0 or 1, got {flag}", offset=offset)
    check_end(buf, offset)
    method = CosemMethodDescriptor(class_id, obis, method_id)
    return ActionRequestNormal(invoke_id_at(buf, 2), method, parameters)


def decode_action_response(buf: bytes | memoryview) -> ActionResponseNormal:
    """Decode a whole ACTION-Response-Normal APDU (``C7 01 …``)."""
    choice = check_header(buf, ApduTag.ACTION_RESPONSE, "ACTION-Response")
    if choice != 1:
        raise DecodeError(f"unsupported ACTION-Response choice {choice}", offset=1)
    result = enum_at(buf, 3, ActionResult)
    flag = byte_at(buf, 4)
    returned: Data | DataAccessResult | None = None
    if flag == 1:
        returned, offset = decode_data_result(buf, 5)
    elif flag == 0:
        offset = 5
    else:
        raise DecodeError(f"return-parameters flag must be 0 or 1, got {flag}", offset=4)
    check_end(buf, offset)
    return ActionResponseNormal(invoke_id_at(buf, 2), result, returned)
