"""DLMS/COSEM application layer: A-XDR data, OBIS codes, units and xDLMS service APDUs.

The APDU classes live in ``ivy_gateway.codec.dlms.apdu.*``; this package exports the
vocabulary every caller needs.
"""

from .apdu.common import (
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    InvokeIdAndPriority,
    LongInvokeIdAndPriority,
    SelectiveAccess,
)
from .apdu.get import GetBlockReassembler
from .apdu.notification import notification_values
from .apdu.tags import ApduTag
from .apdu.xdlms import ServiceApdu, decode_service_apdu, response_invoke_id
from .axdr import BitString, CompactArray, Data, DataType, decode_data, encode_data, skip_data
from .clock import ClockStatus, CosemDate, CosemDateTime, CosemTime
from .describe_data import describe_service_apdu
from .enums import ActionResult, DataAccessResult, InterfaceClass, ServiceError, StateError
from .obis import DEFAULT_CATALOGUE, Catalogue, CosemObject, Obis
from .units import ScalerUnit, Unit, decode_scaler_unit

__all__ = [
    "DEFAULT_CATALOGUE",
    "ActionResult",
    "ApduTag",
    "BitString",
    "Catalogue",
    "ClockStatus",
    "CompactArray",
    "CosemAttributeDescriptor",
    "CosemDate",
    "CosemDateTime",
    "CosemMethodDescriptor",
    "CosemObject",
    "CosemTime",
    "Data",
    "DataAccessResult",
    "DataType",
    "GetBlockReassembler",
    "InterfaceClass",
    "InvokeIdAndPriority",
    "LongInvokeIdAndPriority",
    "Obis",
    "ScalerUnit",
    "SelectiveAccess",
    "ServiceApdu",
    "ServiceError",
    "StateError",
    "Unit",
    "decode_data",
    "decode_scaler_unit",
    "decode_service_apdu",
    "describe_service_apdu",
    "encode_data",
    "notification_values",
    "response_invoke_id",
    "skip_data",
]
