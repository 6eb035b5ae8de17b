"""DL/T 645-2007, sans-IO: frames, the stream decoder, every function's messages, the DI
catalogue and value formats (``shared/reference/dlt645.md``).

Typical session use::

    decoder = FrameDecoder()
    wire = encode_message(address, ReadRequest(DataId.parse("00010000")), preamble_len=4)
    ...                                             # send wire, then for every TCP read:
    decoder.feed(chunk)
    while (event := decoder.next_event()) is not NEED_DATA:
        if isinstance(event, RejectedFrame):
            continue                                # counted; event.raw for the capture
        reply = decode_message(event)               # ReadReply | ErrorReply | ...
        if isinstance(reply, ReadReply):
            reading = decode_reading(reply.di, reply.value)   # Decimal in kWh, W, V ...
"""

from .address import BROADCAST, WILDCARD, Address
from .catalog import (
    BY_QUANTITY,
    CATALOG,
    CatalogEntry,
    OperationStatus,
    Reading,
    decode_reading,
    lookup,
)
from .control import ControlCode, Direction, Function
from .credentials import OperatorCode, Password
from .data import DataId, Demand, Value
from .decoder import NEED_DATA, FrameDecoder, NeedData, RejectedFrame
from .describe import describe_frame, describe_stream
from .errors import ErrorFlags
from .frame import Frame, checksum, decode_frame, encode_frame, looks_like_dlt645
from .management import ALL_EVENTS
from .relay import (
    RelayCommand,
    RelayControlRequest,
    SimpleRelayRequest,
    VendorAesRelayRequest,
    VendorRelayPlaintext,
)
from .services import (
    AckReply,
    BroadcastTimeRequest,
    ChangeBaudReply,
    ChangeBaudRequest,
    ChangePasswordReply,
    ChangePasswordRequest,
    ClearDemandRequest,
    ClearEventsRequest,
    ClearMeterRequest,
    ErrorReply,
    FreezeRequest,
    Message,
    ReadAddressReply,
    ReadAddressRequest,
    ReadFollowUpReply,
    ReadFollowUpRequest,
    ReadReply,
    ReadRequest,
    WriteAddressRequest,
    WriteRequest,
    decode_message,
    encode_message,
)

__all__ = [
    "ALL_EVENTS",
    "BROADCAST",
    "BY_QUANTITY",
    "CATALOG",
    "NEED_DATA",
    "WILDCARD",
    "AckReply",
    "Address",
    "BroadcastTimeRequest",
    "CatalogEntry",
    "ChangeBaudReply",
    "ChangeBaudRequest",
    "ChangePasswordReply",
    "ChangePasswordRequest",
    "ClearDemandRequest",
    "ClearEventsRequest",
    "ClearMeterRequest",
    "ControlCode",
    "DataId",
    "Demand",
    "Direction",
    "ErrorFlags",
    "ErrorReply",
    "Frame",
    "FrameDecoder",
    "FreezeRequest",
    "Function",
    "Message",
    "NeedData",
    "OperationStatus",
    "OperatorCode",
    "Password",
    "ReadAddressReply",
    "ReadAddressRequest",
    "ReadFollowUpReply",
    "ReadFollowUpRequest",
    "ReadReply",
    "ReadRequest",
    "Reading",
    "RejectedFrame",
    "RelayCommand",
    "RelayControlRequest",
    "SimpleRelayRequest",
    "Value",
    "VendorAesRelayRequest",
    "VendorRelayPlaintext",
    "WriteAddressRequest",
    "WriteRequest",
    "checksum",
    "decode_frame",
    "decode_message",
    "decode_reading",
    "describe_frame",
    "describe_stream",
    "encode_frame",
    "encode_message",
    "looks_like_dlt645",
    "lookup",
]
