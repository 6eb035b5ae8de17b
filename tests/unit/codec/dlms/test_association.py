"""The client association state machine: every transition, every refusal, on vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivy_gateway.codec.dlms import Data, DataAccessResult, DataType, Obis
from ivy_gateway.codec.dlms.apdu.acse import (
    Aare,
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    Mechanism,
    decode_aarq,
    encode_aare,
)
from ivy_gateway.codec.dlms.apdu.action import ActionResponseNormal, decode_action_request
from ivy_gateway.codec.dlms.apdu.ciphered import decode_ciphered_apdu
from ivy_gateway.codec.dlms.apdu.common import InvokeIdAndPriority
from ivy_gateway.codec.dlms.apdu.exception import ConfirmedServiceError
from ivy_gateway.codec.dlms.apdu.get import (
    GetResponseNormal,
    GetResponseWithDatablock,
    decode_get_request,
)
from ivy_gateway.codec.dlms.apdu.initiate import (
    Conformance,
    InitiateResponse,
    decode_initiate_request,
    encode_initiate_response,
)
from ivy_gateway.codec.dlms.apdu.release import ReleaseResponseReason
from ivy_gateway.codec.dlms.apdu.set import SetResponseNormal
from ivy_gateway.codec.dlms.association import ASSOCIATION_LN_OBIS, Association
from ivy_gateway.codec.dlms.association_events import (
    ActionCompleted,
    Associated,
    AssociationRejected,
    AssociationState,
    AuthenticationFailed,
    AuthenticationRequired,
    BlockReceived,
    ErrorReceived,
    GetCompleted,
    GetListCompleted,
    LocalProtocolError,
    NotificationReceived,
    Released,
    RemoteProtocolError,
    RequestFailed,
    SetCompleted,
    UnexpectedResponse,
)
from ivy_gateway.codec.dlms.enums import ActionResult, InitiateError, ServiceErrorKind
from ivy_gateway.codec.dlms.enums import ConfirmedServiceErrorService as Service
from ivy_gateway.codec.dlms.security import SecurityContext, SecurityKeys
from ivy_gateway.codec.errors import DecodeError, SecurityError

VECTORS = {
    v["name"]: bytes.fromhex(v["hex"])
    for v in json.loads(
        (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
}
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
SERVER_TITLE = bytes.fromhex("4D4D4D0000BC614E")
CTOS = b"K56iVagY"
STOC = b"P6wRJ21F"
VOLTAGE = Obis(1, 0, 12, 7, 0, 255)
ALL = Conformance(0x001E1D)


def _iid(n: int) -> InvokeIdAndPriority:
    return InvokeIdAndPriority.make(n)


def _aare(conformance: Conformance = ALL, max_pdu: int = 1024) -> bytes:
    info = InitiateResponse(conformance, max_pdu)
    return encode_aare(
        Aare(ApplicationContext.LN, AssociationResult.ACCEPTED, user_information=info)
    )


def _associated(conformance: Conformance = ALL, max_pdu: int = 1024) -> Association:
    association = Association()
    association.send_aarq()
    assert isinstance(association.receive(_aare(conformance, max_pdu)), Associated)
    return association


def _server() -> SecurityContext:
    return SecurityContext(
        SecurityKeys(EK, AK), system_title=SERVER_TITLE, peer_system_title=CLIENT_TITLE
    )


def _client() -> Association:
    security = SecurityContext(SecurityKeys(EK, AK), system_title=CLIENT_TITLE)
    return Association(security=security, mechanism=Mechanism.HLS_GMAC)


def _hls_aare(
    server: SecurityContext,
    *,
    diagnostic: AcseServiceUserDiagnostic = AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED,
    challenge: bytes | None = STOC,
    information: bytes | None = None,
    accepted: bool = True,
) -> bytes:
    plain = information or encode_initiate_response(InitiateResponse(ALL, 512))
    return encode_aare(
        Aare(
            ApplicationContext.LN_CIPHER,
            AssociationResult.ACCEPTED if accepted else AssociationResult.REJECTED_PERMANENT,
            diagnostic,
            responding_ap_title=SERVER_TITLE,
            authentication_required=True,
            mechanism=Mechanism.HLS_GMAC,
            responding_authentication_value=challenge,
            user_information=decode_ciphered_apdu(server.encipher(plain)),
        )
    )


def _hls_associated() -> tuple[Association, SecurityContext]:
    client, server = _client(), _server()
    aarq = decode_aarq(client.send_aarq(CTOS))
    assert aarq.calling_ap_title == CLIENT_TITLE
    assert aarq.calling_authentication_value == CTOS
    server.decipher(aarq.user_information)  # type: ignore[arg-type]
    assert client.receive(_hls_aare(server)) == AuthenticationRequired(STOC)
    request = decode_action_request(client.send_hls_reply())
    assert request.method.obis == ASSOCIATION_LN_OBIS
    assert request.parameters is not None
    assert isinstance(request.parameters.value, bytes)
    f_ctos = Data(DataType.OCTET_STRING, server.reply_to_challenge(CTOS))
    answer = ActionResponseNormal(request.invoke_id_and_priority, ActionResult.SUCCESS, f_ctos)
    event = client.receive(answer.to_bytes())
    assert isinstance(event, Associated)
    assert event.server_system_title == SERVER_TITLE
    return client, server


# -- lifecycle ------------------------------------------------------------------------------


def test_aarq_is_the_vector_the_em114070_accepted() -> None:
    association = Association()
    assert association.send_aarq() == VECTORS["aarq_ln_no_auth"]
    assert association.state is AssociationState.AARQ_SENT


def test_accepted_aare_associates_and_reports_the_grant() -> None:
    association = Association()
    association.send_aarq()
    event = association.receive(VECTORS["aare_accepted_ln"])
    assert event == Associated(Conformance(0x1D), 1024, None)
    assert association.state is AssociationState.ASSOCIATED
    assert not association.supports_get_with_list


def test_rejected_aare_returns_to_idle_with_the_diagnostic() -> None:
    association = Association()
    association.send_aarq()
    event = association.receive(VECTORS["aare_rejected_context_not_supported"])
    assert isinstance(event, AssociationRejected)
    assert event.diagnostic is AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
    assert association.state is AssociationState.IDLE


def test_rejected_aare_carries_its_confirmed_service_error() -> None:
    association = Association()
    association.send_aarq()
    event = association.receive(VECTORS["aare_rejected_with_confirmed_service_error"])
    assert isinstance(event, AssociationRejected)
    assert event.error is not None
    assert event.error.error_class is ServiceErrorKind.INITIATE


def test_accepted_aare_with_a_service_error_counts_as_rejected() -> None:
    error = ConfirmedServiceError(Service.INITIATE_ERROR, ServiceErrorKind.INITIATE, 1)
    aare = encode_aare(
        Aare(ApplicationContext.LN, AssociationResult.ACCEPTED, user_information=error)
    )
    association = Association()
    association.send_aarq()
    event = association.receive(aare)
    assert event == AssociationRejected(
        AssociationResult.REJECTED_PERMANENT, AcseServiceUserDiagnostic.NULL, error
    )


def test_accepted_aare_without_initiate_response_is_a_remote_error() -> None:
    association = Association()
    association.send_aarq()
    with pytest.raises(RemoteProtocolError, match="without an InitiateResponse"):
        association.receive(encode_aare(Aare(ApplicationContext.LN, AssociationResult.ACCEPTED)))
    assert association.state is AssociationState.IDLE


def test_release_returns_to_idle_and_drops_requests() -> None:
    association = _associated()
    association.send_get(3, VOLTAGE, 2)
    assert association.send_rlrq() == VECTORS["rlrq_normal"]
    assert association.receive(VECTORS["rlre_normal"]) == Released(ReleaseResponseReason.NORMAL)
    assert association.state is AssociationState.IDLE
    assert association.pending_invoke_ids == ()


def test_lls_puts_the_password_in_the_aarq() -> None:
    association = Association(mechanism=Mechanism.LLS, password=b"12345678")
    aarq = decode_aarq(association.send_aarq())
    assert aarq.mechanism is Mechanism.LLS
    assert aarq.calling_authentication_value == b"12345678"


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.send_get(3, VOLTAGE, 2),
        lambda a: a.send_rlrq(),
        lambda a: a.send_hls_reply(),
        lambda a: a.send_set(3, VOLTAGE, 2, Data(DataType.NULL_DATA)),
        lambda a: a.send_action(70, VOLTAGE, 1),
    ],
)
def test_services_before_association_raise(call) -> None:  # type: ignore[no-untyped-def]
    association = Association()
    with pytest.raises(LocalProtocolError, match="in state IDLE"):
        call(association)


def test_second_aarq_raises() -> None:
    association = _associated()
    with pytest.raises(LocalProtocolError, match="send AARQ in state ASSOCIATED"):
        association.send_aarq()


@pytest.mark.parametrize("name", ["aare_accepted_ln", "rlre_normal"])
def test_acse_answers_out_of_state_are_remote_errors(name: str) -> None:
    association = _associated()
    with pytest.raises(RemoteProtocolError):
        association.receive(VECTORS[name])


@pytest.mark.parametrize("apdu", ["aarq_ln_no_auth", "rlrq_normal", "get_request_normal_clock"])
def test_requests_from_the_server_are_remote_errors(apdu: str) -> None:
    with pytest.raises(RemoteProtocolError, match="does not send"):
        _associated().receive(VECTORS[apdu])


def test_empty_apdu_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        Association().receive(b"")


def test_reset_forgets_everything() -> None:
    association = _associated()
    association.send_get(3, VOLTAGE, 2)
    assert association.reset() == (1,)
    assert association.state is AssociationState.IDLE


def test_constructor_refuses_inconsistent_security() -> None:
    with pytest.raises(ValueError, match="SecurityContext"):
        Association(ciphered=True)
    with pytest.raises(ValueError, match="SecurityContext"):
        Association(mechanism=Mechanism.HLS_GMAC)
    with pytest.raises(ValueError, match="not supported"):
        Association(mechanism=Mechanism.HLS_MD5)


def test_challenge_only_with_hls() -> None:
    with pytest.raises(LocalProtocolError, match="challenge"):
        Association().send_aarq(CTOS)
    with pytest.raises(LocalProtocolError, match="challenge"):
        _client().send_aarq()


# -- services -------------------------------------------------------------------------------


def test_get_round_trip_on_vectors() -> None:
    association = _associated()
    assert association.send_get(3, VOLTAGE, 2) == VECTORS["get_request_normal_voltage"]
    event = association.receive(VECTORS["get_response_double_long_unsigned"])
    assert event == GetCompleted(1, Data(DataType.DOUBLE_LONG_UNSIGNED, 23636))


def test_get_error_result_is_returned_not_raised() -> None:
    association = _associated()
    association.send_get(3, VOLTAGE, 2)
    event = association.receive(VECTORS["get_response_error_object_undefined"])
    assert event == GetCompleted(1, DataAccessResult.OBJECT_UNDEFINED)


def test_set_and_action_round_trips() -> None:
    association = _associated()
    clock = Obis(0, 0, 1, 0, 0, 255)
    value = Data(DataType.OCTET_STRING, bytes.fromhex("07EA011E05042213008000FF"))
    assert association.send_set(8, clock, 2, value) == VECTORS["set_request_clock"]
    assert association.receive(VECTORS["set_response_success"]) == SetCompleted(
        1, DataAccessResult.SUCCESS
    )
    disconnect = Obis(0, 0, 96, 3, 10, 255)
    request = association.send_action(70, disconnect, 1, Data(DataType.INTEGER, 0))
    assert request == bytes.fromhex("C301C20046000060030AFF01010F00")
    reply = ActionResponseNormal(_iid(2), ActionResult.SUCCESS).to_bytes()
    assert association.receive(reply) == ActionCompleted(2, ActionResult.SUCCESS, None)


def test_get_with_list_needs_multiple_references() -> None:
    with pytest.raises(LocalProtocolError, match="multiple-references"):
        _associated(Conformance(0x1D)).send_get_with_list([(3, VOLTAGE, 2)])
    association = _associated()
    with pytest.raises(LocalProtocolError, match="at least one"):
        association.send_get_with_list([])
    request = association.send_get_with_list([(3, VOLTAGE, 2), (3, VOLTAGE, 3)])
    assert request == bytes.fromhex("C003C1020003") + VECTORS["get_request_with_list"][6:]
    event = association.receive(VECTORS["get_response_with_list"])
    assert isinstance(event, GetListCompleted)
    assert event.results[1] is DataAccessResult.OBJECT_UNDEFINED


def test_block_transfer_asks_for_the_next_block_and_joins_them() -> None:
    association = _associated()
    association.send_get(7, Obis(1, 0, 99, 1, 0, 255), 2)
    event = association.receive(VECTORS["get_response_datablock_1_of_2"])
    assert event == BlockReceived(1, 1, bytes.fromhex("C002C100000001"))
    done = association.receive(VECTORS["get_response_datablock_2_of_2_last"])
    assert isinstance(done, GetCompleted)
    assert isinstance(done.result, Data)
    assert done.result.tag is DataType.ARRAY


def test_block_transfer_out_of_order_fails_the_request() -> None:
    association = _associated()
    association.send_get(7, Obis(1, 0, 99, 1, 0, 255), 2)
    event = association.receive(VECTORS["get_response_datablock_2_of_2_last"])
    assert isinstance(event, RequestFailed)
    assert association.pending_invoke_ids == ()


def test_block_transfer_size_is_bounded() -> None:
    association = Association(max_block_size=16)
    association.send_aarq()
    association.receive(_aare())
    association.send_get(7, Obis(1, 0, 99, 1, 0, 255), 2)
    event = association.receive(VECTORS["get_response_datablock_1_of_2"])
    assert isinstance(event, RequestFailed)
    assert "exceeds" in event.reason


def test_block_transfer_abort_is_a_result() -> None:
    association = _associated()
    association.send_get(7, Obis(1, 0, 99, 1, 0, 255), 2)
    abort = GetResponseWithDatablock(_iid(1), True, 1, DataAccessResult.LONG_GET_ABORTED)
    assert association.receive(abort.to_bytes()) == GetCompleted(
        1, DataAccessResult.LONG_GET_ABORTED
    )


def test_response_of_the_wrong_kind_fails_the_request() -> None:
    association = _associated()
    association.send_get(3, VOLTAGE, 2)
    event = association.receive(SetResponseNormal(_iid(1), DataAccessResult.SUCCESS).to_bytes())
    assert isinstance(event, RequestFailed)
    assert "does not answer a GET" in event.reason


def test_unknown_invoke_id_is_an_event_not_a_crash() -> None:
    association = _associated()
    association.send_get(3, VOLTAGE, 2)
    stray = GetResponseNormal(_iid(9), Data(DataType.NULL_DATA)).to_bytes()
    event = association.receive(stray)
    assert isinstance(event, UnexpectedResponse)
    assert event.invoke_id == 9
    assert association.pending_invoke_ids == (1,)


def test_abandoned_request_answer_is_unexpected() -> None:
    association = _associated()
    association.send_get(3, VOLTAGE, 2)
    assert association.abandon(1)
    assert not association.abandon(1)
    event = association.receive(VECTORS["get_response_double_long_unsigned"])
    assert isinstance(event, UnexpectedResponse)


def test_invoke_ids_wrap_around_and_skip_ones_in_use() -> None:
    association = _associated()
    seen = []
    for _ in range(16):
        association.send_get(3, VOLTAGE, 2)
        seen.append(association.last_invoke_id)
    assert seen == [*range(1, 16), 0]
    with pytest.raises(LocalProtocolError, match="16 invoke-ids"):
        association.send_get(3, VOLTAGE, 2)
    association.abandon(5)
    association.send_get(3, VOLTAGE, 2)
    assert association.last_invoke_id == 5
    reply = GetResponseNormal(_iid(5), Data(DataType.NULL_DATA)).to_bytes()
    assert association.receive(reply) == GetCompleted(5, Data(DataType.NULL_DATA))
    association.abandon(7)
    association.send_get(3, VOLTAGE, 2)
    assert association.last_invoke_id == 7


def test_request_above_the_server_pdu_size_is_refused() -> None:
    association = _associated(max_pdu=12)
    with pytest.raises(LocalProtocolError, match="exceeds"):
        association.send_get(3, VOLTAGE, 2)
    assert association.pending_invoke_ids == ()


# -- errors and notifications ---------------------------------------------------------------


def test_exception_response_drops_every_request() -> None:
    association = _associated()
    association.send_get(3, VOLTAGE, 2)
    event = association.receive(VECTORS["exception_response_service_not_allowed"])
    assert isinstance(event, ErrorReceived)
    assert event.dropped_invoke_ids == (1,)
    assert association.state is AssociationState.ASSOCIATED


def test_exception_response_to_the_aarq_returns_to_idle() -> None:
    association = Association()
    association.send_aarq()
    event = association.receive(VECTORS["confirmed_service_error_initiate_dlms_version_too_low"])
    assert isinstance(event, ErrorReceived)
    assert association.state is AssociationState.IDLE


@pytest.mark.parametrize(
    "name",
    [
        "event_notification_without_time",
        "event_notification_with_time",
        "data_notification_without_datetime",
    ],
)
@pytest.mark.parametrize("associate", [False, True])
def test_notifications_pass_in_any_state(name: str, associate: bool) -> None:
    association = _associated() if associate else Association()
    event = association.receive(VECTORS[name])
    assert isinstance(event, NotificationReceived)
    assert event.apdu == VECTORS[name]


# -- ciphering and HLS-GMAC -----------------------------------------------------------------


def test_hls_gmac_four_passes_and_ciphered_get() -> None:
    client, server = _hls_associated()
    request = client.send_get(3, VOLTAGE, 2)
    assert request[0] == 0xC8  # glo-get-request
    plain = server.decipher(request)
    iid = decode_get_request(plain).invoke_id_and_priority
    response = server.encipher(GetResponseNormal(iid, Data(DataType.UNSIGNED, 7)).to_bytes())
    assert client.receive(response) == GetCompleted(iid.invoke_id, Data(DataType.UNSIGNED, 7))


def test_aarq_carries_a_ciphered_initiate_request() -> None:
    client, server = _client(), _server()
    aarq = decode_aarq(client.send_aarq(CTOS))
    assert aarq.application_context is ApplicationContext.LN_CIPHER
    initiate = decode_initiate_request(server.decipher(aarq.user_information))  # type: ignore[arg-type]
    assert initiate.conformance == ALL


def test_hls_wrong_server_answer_fails_authentication() -> None:
    client, server = _client(), _server()
    client.send_aarq(CTOS)
    client.receive(_hls_aare(server))
    request = decode_action_request(client.send_hls_reply())
    wrong = Data(DataType.OCTET_STRING, server.reply_to_challenge(b"not CtoS"))
    answer = ActionResponseNormal(request.invoke_id_and_priority, ActionResult.SUCCESS, wrong)
    event = client.receive(answer.to_bytes())
    assert isinstance(event, AuthenticationFailed)
    assert client.state is AssociationState.IDLE


@pytest.mark.parametrize(
    "answer",
    [
        ActionResponseNormal(_iid(1), ActionResult.READ_WRITE_DENIED),
        ActionResponseNormal(_iid(1), ActionResult.SUCCESS),
        ActionResponseNormal(_iid(1), ActionResult.SUCCESS, DataAccessResult.OTHER_REASON),
    ],
)
def test_hls_refused_or_empty_pass4_fails(answer: ActionResponseNormal) -> None:
    client, server = _client(), _server()
    client.send_aarq(CTOS)
    client.receive(_hls_aare(server))
    client.send_hls_reply()
    assert isinstance(client.receive(answer.to_bytes()), AuthenticationFailed)


@pytest.mark.parametrize(
    ("diagnostic", "challenge"),
    [
        (AcseServiceUserDiagnostic.NULL, STOC),
        (AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED, None),
    ],
)
def test_hls_without_a_challenge_fails(
    diagnostic: AcseServiceUserDiagnostic, challenge: bytes | None
) -> None:
    client, server = _client(), _server()
    client.send_aarq(CTOS)
    event = client.receive(_hls_aare(server, diagnostic=diagnostic, challenge=challenge))
    assert isinstance(event, AuthenticationFailed)
    assert client.state is AssociationState.IDLE


def test_ciphered_rejection_carries_the_deciphered_error() -> None:
    client, server = _client(), _server()
    client.send_aarq(CTOS)
    error = ConfirmedServiceError(
        Service.INITIATE_ERROR, ServiceErrorKind.INITIATE, InitiateError.OTHER
    )
    aare = _hls_aare(
        server,
        information=error.to_bytes(),
        accepted=False,
        diagnostic=AcseServiceUserDiagnostic.NO_REASON_GIVEN,
    )
    event = client.receive(aare)
    assert isinstance(event, AssociationRejected)
    assert event.error == error


def test_wrong_keys_raise_a_security_error() -> None:
    client = _client()
    client.send_aarq(CTOS)
    stranger = SecurityContext(SecurityKeys(bytes(16), AK), system_title=SERVER_TITLE)
    with pytest.raises(SecurityError):
        client.receive(_hls_aare(stranger))


def test_plain_response_in_a_ciphered_association_is_refused() -> None:
    client, _ = _hls_associated()
    client.send_get(3, VOLTAGE, 2)
    with pytest.raises(RemoteProtocolError, match="plain response"):
        client.receive(GetResponseNormal(_iid(2), Data(DataType.NULL_DATA)).to_bytes())


def test_ciphered_apdus_need_keys_and_one_layer() -> None:
    with pytest.raises(RemoteProtocolError, match="no keys"):
        _associated().receive(VECTORS["ciphered_glo_get_response_auth_enc"])
    client, server = _hls_associated()
    double = server.encipher(server.encipher(VECTORS["get_response_null"]), general=True)
    with pytest.raises(RemoteProtocolError, match="inside"):
        client.receive(double)


def test_ciphered_aare_without_keys_is_a_remote_error() -> None:
    association = Association()
    association.send_aarq()
    with pytest.raises(RemoteProtocolError, match="no keys"):
        association.receive(_hls_aare(_server()))


def test_ciphered_get_response_vector_is_deciphered() -> None:
    """``ciphered_glo_get_response_auth_enc`` (built by dlms-cosem's encrypt) on our side."""
    security = SecurityContext(SecurityKeys(EK, AK), system_title=CLIENT_TITLE)
    association = Association(security=security)
    association.send_aarq()
    association.receive(_hls_aare(_server(), diagnostic=AcseServiceUserDiagnostic.NULL))
    association.send_get(8, Obis(0, 0, 1, 0, 0, 255), 2)
    event = association.receive(VECTORS["ciphered_glo_get_response_auth_enc"])
    assert isinstance(event, GetCompleted)
    assert event.result == Data(DataType.OCTET_STRING, bytes.fromhex("07EA011E05042213008000FF"))
