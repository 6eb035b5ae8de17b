"""GET.response decode throughput: ours vs the gurux-dlms and dlms-cosem oracles.

Each contender decodes the same APDU bytes into a Python value: ours with
``decode_get_response``; dlms-cosem with ``GetResponseFactory.from_bytes`` plus
``parse_as_dlms_data`` of the payload (its response object keeps the Data undecoded);
gurux with ``GXDLMSClient.getData`` on a PDU-only client. Target: ours ≥ 5× the faster.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from harness import Row, rate
from ivy_gateway.codec.dlms.apdu.get import decode_get_response

SCALAR = bytes.fromhex("C401C1000600005C54")
# a 4-entry profile buffer: array of structure{octet-string date-time, double-long-unsigned}
STRUCTURED = bytes.fromhex(
    "C401C100010402"
    + "02090C07EA011E05042213008000FF06000003E802"
    + "02090C07EA011E05042213008000FF06000003E902"
    + "02090C07EA011E05042213008000FF06000003EA02"
    + "02090C07EA011E05042213008000FF06000003EB"
)


def _gurux(apdu: bytes) -> Callable[[], object]:
    from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
    from gurux_dlms.enums import InterfaceType

    client = GXDLMSClient(True, 16, 1)
    client.interfaceType = InterfaceType.PDU

    def run() -> object:
        reply = GXReplyData()
        client.getData(GXByteBuffer(apdu), reply)
        return reply.value

    return run


def _dlms_cosem(apdu: bytes) -> Callable[[], object]:
    from dlms_cosem.protocol.xdlms.get import GetResponseFactory
    from dlms_cosem.utils import parse_as_dlms_data

    def run() -> object:
        return parse_as_dlms_data(GetResponseFactory.from_bytes(apdu).data)

    return run


def results() -> list[Row]:
    rows: list[Row] = []
    for label, apdu in (("scalar C401C1000600005C54", SCALAR), ("profile 4x2", STRUCTURED)):
        ours = rate(partial(decode_get_response, apdu))
        gurux = rate(_gurux(apdu))
        cosem = rate(_dlms_cosem(apdu))
        best = max(gurux, cosem)
        area = "dlms GET.response decode"
        rows.append(Row(area, f"{label}: ivy", ours, "decodes/s", "≥5× oracles"))
        rows.append(Row(area, f"{label}: gurux-dlms", gurux, "decodes/s"))
        rows.append(Row(area, f"{label}: dlms-cosem", cosem, "decodes/s"))
        verdict = "ok" if ours >= 5 * best else "BELOW TARGET"
        rows.append(Row(area, f"{label}: ivy / faster oracle", ours / best, "×", "≥5", verdict))
    return rows
