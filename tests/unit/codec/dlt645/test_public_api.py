"""The package's public API is pinned: renaming or dropping a name is a deliberate change."""

from __future__ import annotations

import ivy_gateway.codec.dlt645 as dlt645

EXPECTED = {
    "ALL_EVENTS", "BROADCAST", "BY_QUANTITY", "CATALOG", "NEED_DATA", "WILDCARD",
    "AckReply", "Address", "BroadcastTimeRequest", "CatalogEntry", "ChangeBaudReply",
    "ChangeBaudRequest", "ChangePasswordReply", "ChangePasswordRequest", "ClearDemandRequest",
    "ClearEventsRequest", "ClearMeterRequest", "ControlCode", "DataId", "Demand", "Direction",
    "ErrorFlags", "ErrorReply", "Frame", "FrameDecoder", "FreezeRequest", "Function",
    "Message", "NeedData", "OperationStatus", "OperatorCode", "Password", "ReadAddressReply",
    "ReadAddressRequest", "ReadFollowUpReply", "ReadFollowUpRequest", "ReadReply",
    "ReadRequest", "Reading", "RejectedFrame", "RelayCommand", "RelayControlRequest",
    "SimpleRelayRequest", "Value", "VendorAesRelayRequest", "VendorRelayPlaintext",
    "WriteAddressRequest", "WriteRequest", "checksum", "decode_frame", "decode_message",
    "decode_reading", "describe_frame", "describe_stream", "encode_frame", "encode_message",
    "looks_like_dlt645", "lookup",
}  # fmt: skip


def test_public_api_is_pinned() -> None:
    assert set(dlt645.__all__) == EXPECTED
    assert all(hasattr(dlt645, name) for name in EXPECTED)
