"""Diagnosis parsing, on short excerpts of charon 5.9.8 logs captured from real seeded mistakes
(the scenarios in scenarios/test_diagnosis.py run the same mistakes against real daemons)."""

from __future__ import annotations

import pytest

from lab.observe.diagnose import (
    CAUSES,
    TunnelEvidence,
    cause,
    diagnose_tunnel,
    parse_log,
    tunnel_lines,
)
from lab.topology.proposals import logged_keywords

T = "2026-11-22T02:56:07"
PROVIDER, CUSTOMER = "198.51.100.12", "198.51.100.21"


def conn(
    local: str,
    remote: str,
    version: str = "IKEv2",
    dpd: str | None = "2",
    lts: str = "10.10.0.0/24",
    rts: str = "172.16.1.0/24",
) -> dict:
    c = {
        "local_addrs": [local],
        "remote_addrs": [remote],
        "version": version,
        "children": {"tunnel2": {"local-ts": [lts], "remote-ts": [rts]}},
    }
    if dpd is not None:
        c["dpd_delay"] = dpd
    return c


def tunnel(
    vgw2_log: str,
    cgw_log: str,
    *,
    up: bool = False,
    version: str = "IKEv2",
    customer: dict | None = None,
) -> TunnelEvidence:
    """tunnel2 between provider vgw2 and customer cgw, as diagnose() assembles it."""
    conns = {
        "vgw2": conn(PROVIDER, CUSTOMER, version),
        "cgw": customer
        or conn(CUSTOMER, PROVIDER, version, lts="172.16.1.0/24", rts="10.10.0.0/24"),
    }
    ev = TunnelEvidence("tunnel2", "vgw2", "cgw", conns=conns, up=up)
    for node, text in (("vgw2", vgw2_log), ("cgw", cgw_log)):
        ev.lines[node] = tunnel_lines(parse_log(node, text), "tunnel2", conns[node])
    return ev


def log(*lines: str) -> str:
    return "\n".join(f"{T} {line}" for line in lines)


def causes(ev: TunnelEvidence) -> list[str]:
    return [d.cause for d in diagnose_tunnel(ev)]


def only(ev: TunnelEvidence) -> str:
    (d,) = diagnose_tunnel(ev)
    assert "\n" not in d.message and d.evidence
    return d.message


# parsing -------------------------------------------------------------------------------------
def test_parse_log_reads_tags_and_starts_at_the_last_daemon_start() -> None:
    lines = parse_log(
        "vgw2",
        log(
            "00[DMN] Starting IKE charon daemon (strongSwan 5.9.8, Linux 6.18.44, x86_64)",
            "15[NET] <1> received packet: from 198.51.100.21[500] to 198.51.100.12[500] (336 bytes)",
            "00[DMN] Starting IKE charon daemon (strongSwan 5.9.8, Linux 6.18.44, x86_64)",
            "16[CFG] added vici connection: tunnel2",
            "15[NET] <3> received packet: from 198.51.100.21[500] to 198.51.100.12[500] (336 bytes)",
            "14[CFG] <tunnel2|3> selected peer config 'tunnel2'",
            "not a charon line",
        ),
    )
    assert [(ln.uid, ln.name) for ln in lines] == [
        (None, None),
        (None, None),
        (3, None),
        (3, "tunnel2"),
    ]
    assert lines[-1].msg == "selected peer config 'tunnel2'"


def test_unnamed_responder_sa_belongs_to_the_tunnel_with_its_addresses() -> None:
    lines = parse_log(
        "vgw1",
        log(
            "12[NET] <1> received packet: from 198.51.100.21[500] to 198.51.100.11[500] (464 bytes)",
            "12[IKE] <1> 198.51.100.21 is initiating an IKE_SA",
            "09[CFG] <tunnel1|1> selected peer config 'tunnel1'",
            "10[NET] <2> received packet: from 198.51.100.22[500] to 198.51.100.11[500] (464 bytes)",
            "10[IKE] <2> 198.51.100.22 is initiating an IKE_SA",
        ),
    )
    mine = tunnel_lines(lines, "tunnel1", conn("198.51.100.11", "198.51.100.21"))
    assert {ln.uid for ln in mine} == {1} and len(mine) == 3
    assert tunnel_lines(lines, "tunnel3", None) == []


@pytest.mark.parametrize(
    ("logged", "words"),
    [
        ("IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "aes128-sha1-modp1024"),
        ("IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "aes256-sha256-modp2048"),
        ("ESP:AES_CBC_256/HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ", "aes256-sha256-modp2048"),
        ("ESP:AES_CBC_128/HMAC_SHA1_96/NO_EXT_SEQ", "aes128-sha1"),
        (
            "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384, IKE:AES_CBC_128/HMAC_SHA2_256_128/"
            "PRF_HMAC_SHA2_256/CURVE_25519",
            "aes256gcm16-prfsha384-ecp384, aes128-sha256-curve25519",
        ),
        ("ESP:AES_GCM_16_128/EXT_SEQ", "aes128gcm16-esn"),
    ],
)
def test_logged_keywords(logged: str, words: str) -> None:
    assert logged_keywords(logged) == words


# the causes, IKEv2 -------------------------------------------------------------------------
def test_ike_proposal_mismatch() -> None:
    ev = tunnel(
        log(
            "15[NET] <1> received packet: from 198.51.100.21[500] to 198.51.100.12[500] (336 bytes)",
            "15[ENC] <1> parsed IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]",
            "15[CFG] <1> received proposals: IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024",
            "15[CFG] <1> configured proposals: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/"
            "MODP_2048",
            "15[IKE] <1> received proposals unacceptable",
            "15[ENC] <1> generating IKE_SA_INIT response 0 [ N(NO_PROP) ]",
        ),
        log(
            "16[NET] <tunnel2|2> sending packet: from 198.51.100.21[500] to 198.51.100.12[500]",
            "11[NET] <tunnel2|2> received packet: from 198.51.100.12[500] to 198.51.100.21[500]",
            "11[IKE] <tunnel2|2> received NO_PROPOSAL_CHOSEN notify error",
        ),
    )
    assert only(ev) == (
        "tunnel2: IKE proposal mismatch: customer cgw offers aes128-sha1-modp1024,"
        " provider vgw2 accepts aes256-sha256-modp2048"
    )


def test_esp_proposal_mismatch() -> None:
    ev = tunnel(
        log(
            "14[CFG] <tunnel2|1> received proposals: ESP:AES_CBC_128/HMAC_SHA1_96/NO_EXT_SEQ",
            "14[CFG] <tunnel2|1> configured proposals: ESP:AES_CBC_256/HMAC_SHA2_256_128/MODP_2048/"
            "NO_EXT_SEQ",
            "14[IKE] <tunnel2|1> no acceptable proposal found",
            "14[IKE] <tunnel2|1> failed to establish CHILD_SA, keeping IKE_SA",
        ),
        log("10[IKE] <tunnel2|2> received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built"),
    )
    assert only(ev) == (
        "tunnel2: ESP proposal mismatch: customer cgw offers aes128-sha1, "
        "provider vgw2 accepts aes256-sha256-modp2048"
    )


def test_psk_mismatch_names_no_key() -> None:
    ev = tunnel(
        log(
            "15[IKE] <tunnel2|1> tried 1 shared key for '198.51.100.12' - '198.51.100.21', but MAC "
            "mismatched",
            "15[ENC] <tunnel2|1> generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]",
        ),
        log("11[IKE] <tunnel2|2> received AUTHENTICATION_FAILED notify error"),
    )
    assert only(ev).startswith(
        "tunnel2: pre-shared key mismatch: provider vgw2 rejects customer "
        "cgw's authentication (MAC mismatched)"
    )


def test_traffic_selector_mismatch_in_the_proposers_view() -> None:
    ev = tunnel(
        log(
            "14[IKE] <tunnel2|1> traffic selectors 10.20.0.0/24 === 172.16.1.0/24 unacceptable",
            "14[IKE] <tunnel2|1> failed to establish CHILD_SA, keeping IKE_SA",
        ),
        log("12[IKE] <tunnel2|2> received TS_UNACCEPTABLE notify, no CHILD_SA built"),
    )
    assert only(ev) == (
        "tunnel2: traffic selector mismatch: customer cgw proposes 172.16.1.0/24 "
        "=== 10.20.0.0/24, provider vgw2 accepts 172.16.1.0/24 === 10.10.0.0/24"
    )


def test_wrong_peer_address_and_peer_not_answering() -> None:
    def sent_to(address: str) -> str:
        return log(
            f"11[IKE] <tunnel2|2> initiating IKE_SA tunnel2[2] to {address}",
            f"11[NET] <tunnel2|2> sending packet: from 198.51.100.21[500] to {address}[500] "
            "(464 bytes)",
            "06[IKE] <tunnel2|2> retransmit 1 of request with message ID 0",
            f"06[NET] <tunnel2|2> sending packet: from 198.51.100.21[500] to {address}[500] "
            "(464 bytes)",
        )

    wrong = tunnel("", sent_to("198.51.100.99"))
    assert only(wrong) == (
        "tunnel2: wrong peer address: customer cgw sends IKE to "
        "198.51.100.99, which never answers; provider vgw2 is at 198.51.100.12"
    )
    silent = tunnel("", sent_to(PROVIDER))
    assert causes(silent) == ["peer-not-answering"]


def test_ike_version_mismatch_both_ways() -> None:
    v1_to_v2 = tunnel(
        log(
            "13[NET] <1> received packet: from 198.51.100.21[500] to 198.51.100.12[500] (180 bytes)",
            "13[ENC] <1> parsed ID_PROT request 0 [ SA V V V V V ]",
            "13[IKE] <1> no IKE config found for 198.51.100.12...198.51.100.21, sending "
            "NO_PROPOSAL_CHOSEN",
        ),
        log(
            "11[IKE] <tunnel2|2> initiating Main Mode IKE_SA tunnel2[2] to 198.51.100.12",
            "12[IKE] <tunnel2|2> received NO_PROPOSAL_CHOSEN error notify",
        ),
    )
    assert only(v1_to_v2) == (
        "tunnel2: IKE version mismatch: customer cgw sends IKEv1 (Main "
        "Mode), provider vgw2 is configured for IKEv2 only"
    )
    v2_to_v1 = tunnel(
        log(
            "07[NET] <1> received packet: from 198.51.100.21[500] to 198.51.100.12[500] (464 bytes)",
            "07[ENC] <1> parsed IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]",
            "07[IKE] <1> no IKE config found for 198.51.100.12...198.51.100.21, sending "
            "NO_PROPOSAL_CHOSEN",
        ),
        log("12[IKE] <tunnel2|2> received NO_PROPOSAL_CHOSEN notify error"),
        version="IKEv1",
    )
    assert only(v2_to_v1).endswith(
        "customer cgw sends IKEv2, provider vgw2 is configured for IKEv1 only"
    )


def test_dpd_off_on_one_side_is_a_warning_even_when_up() -> None:
    ev = tunnel("", "", up=True, customer=conn(CUSTOMER, PROVIDER, dpd=None))
    (d,) = diagnose_tunnel(ev)
    assert d.cause == "dpd-off-one-side" and d.severity == "warning"
    assert d.message == (
        "tunnel2: DPD off on one side: customer cgw has dpd_delay 0 (off), "
        "provider vgw2 probes every 2s; cgw will not notice a dead peer"
    )


# the causes, IKEv1 -------------------------------------------------------------------------
def test_ikev1_proposal_psk_and_selector_mismatches() -> None:
    received = "10[NET] <1> received packet: from 198.51.100.21[500] to 198.51.100.12[500]"
    ike = tunnel(
        log(
            received,
            "13[CFG] <1> received proposals: IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024",
            "13[CFG] <1> configured proposals: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/"
            "MODP_2048",
            "13[IKE] <1> no proposal found",
        ),
        "",
        version="IKEv1",
    )
    assert causes(ike) == ["ike-proposal-mismatch"]
    esp = tunnel(
        log(
            "09[CFG] <tunnel2|1> received proposals: ESP:AES_CBC_128/HMAC_SHA1_96/MODP_1024/NO_EXT_SEQ",
            "09[CFG] <tunnel2|1> configured proposals: ESP:AES_CBC_256/HMAC_SHA2_256_128/MODP_2048/"
            "NO_EXT_SEQ",
            "09[IKE] <tunnel2|1> no matching proposal found, sending NO_PROPOSAL_CHOSEN",
        ),
        "",
        version="IKEv1",
    )
    assert only(esp).startswith(
        "tunnel2: ESP proposal mismatch: customer cgw offers aes128-sha1-modp1024"
    )
    psk = tunnel(
        log(
            received,
            "16[ENC] <1> invalid ID_V1 payload length, decryption failed?",
            "16[IKE] <1> ID_PROT request with message ID 0 processing failed",
        ),
        log(
            "13[NET] <tunnel2|2> received packet: from 198.51.100.12[500] to 198.51.100.21[500]",
            "12[IKE] <tunnel2|2> sending retransmit 1 of request message ID 0, seq 3",
            "12[ENC] <tunnel2|2> invalid HASH_V1 payload length, decryption failed?",
        ),
        version="IKEv1",
    )
    assert causes(psk) == ["psk-mismatch"]
    ts = tunnel(
        log(
            "10[IKE] <tunnel2|1> no matching CHILD_SA config found for 172.16.1.0/24 === "
            "10.20.0.0/24"
        ),
        log("09[IKE] <tunnel2|2> received INVALID_ID_INFORMATION error notify"),
        version="IKEv1",
    )
    assert "customer cgw proposes 172.16.1.0/24 === 10.20.0.0/24" in only(ts)


# what must not be diagnosed ------------------------------------------------------------------
def test_a_working_exchange_gives_no_diagnosis_even_while_down() -> None:
    ev = tunnel(
        log(
            "12[NET] <1> received packet: from 198.51.100.21[500] to 198.51.100.12[500] (464 bytes)",
            "12[CFG] <1> selected proposal: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/"
            "MODP_2048",
            "09[CFG] <tunnel2|1> selected peer config 'tunnel2'",
            "09[IKE] <tunnel2|1> authentication of '198.51.100.21' with pre-shared key successful",
            "09[IKE] <tunnel2|1> CHILD_SA tunnel2{1} established with SPIs 2d8b840a_i 38816da3_o "
            "and TS 10.10.0.0/24 === 172.16.1.0/24",
        ),
        "",
    )
    assert causes(ev) == []


def test_old_failures_do_not_blame_a_tunnel_that_is_up() -> None:
    ev = tunnel(
        log(
            "15[IKE] <tunnel2|1> tried 1 shared key for '198.51.100.12' - "
            "'198.51.100.21', but MAC mismatched"
        ),
        "",
        up=True,
    )
    assert causes(ev) == []


def test_registry_rejects_a_duplicate_cause() -> None:
    with pytest.raises(ValueError, match=r"registered twice; known: .*psk-mismatch"):
        cause("psk-mismatch")(lambda t: None)
    assert "psk-mismatch" in CAUSES
