"""charon's key log, parsed: which keys belong to which SA (and nothing else is kept)."""

from __future__ import annotations

from pathlib import PurePosixPath

from lab.daemons.keylog import EspKeys, keylog_conf, parse


def chunk(prefix: str, name: str, data: bytes) -> list[str]:
    """A %B dump as charon's file logger writes it: a header line, then 16 bytes a line."""
    lines = [f"{prefix} {name} => {len(data)} bytes @ 0x7fa23c006110"]
    for at in range(0, len(data), 16):
        part = data[at : at + 16]
        hexes = " ".join(f"{b:02X}" for b in part).ljust(47)
        text = "".join(chr(b) if 31 < b < 127 else "." for b in part)
        lines.append(f"{prefix} {at:4d}: {hexes}  {text}")
    return lines


def key(n: int, size: int = 32) -> bytes:
    return bytes((n * 7 + i) % 256 for i in range(size))


def hexof(data: bytes) -> str:
    return data.hex()


# IKEv2, as initiator (cgw asked to rekey): keys under the old IKE_SA's prefix <tunnel1|1>,
# the new IKE_SA named by the "rekeyed" line; then a CHILD rekey inside the new one.
IKEV2_INITIATOR = "\n".join(
    [
        "13[ENC] <tunnel1|1> generating CREATE_CHILD_SA request 2 [ SA No KE ]",
        "08[ENC] <tunnel1|1> parsed CREATE_CHILD_SA response 2 [ SA No KE ]",
        *chunk("08[IKE] <tunnel1|1>", "shared Diffie Hellman secret", key(90, 64)),
        *chunk("08[IKE] <tunnel1|1>", "Sk_d secret", key(91)),
        *chunk("08[IKE] <tunnel1|1>", "Sk_ai secret", key(1)),
        *chunk("08[IKE] <tunnel1|1>", "Sk_ar secret", key(2)),
        *chunk("08[IKE] <tunnel1|1>", "Sk_ei secret", key(3)),
        *chunk("08[IKE] <tunnel1|1>", "Sk_er secret", key(4)),
        "08[IKE] <tunnel1|1> IKE_SA tunnel1[3] rekeyed between 198.51.100.21[x]...198.51.100.11[y]",
        "10[ENC] <tunnel1|3> generating CREATE_CHILD_SA request 0 [ N(REKEY_SA) SA No KE TSi TSr ]",
        "13[ENC] <tunnel1|3> parsed CREATE_CHILD_SA response 0 [ SA No KE TSi TSr ]",
        "13[CHD] <tunnel1|3>   using AES_CBC for encryption",
        "13[CHD] <tunnel1|3>   using HMAC_SHA2_256_128 for integrity",
        *chunk("13[CHD] <tunnel1|3>", "DH secret", key(92, 64)),
        *chunk("13[CHD] <tunnel1|3>", "encryption initiator key", key(5)),
        *chunk("13[CHD] <tunnel1|3>", "encryption responder key", key(6)),
        *chunk("13[CHD] <tunnel1|3>", "integrity initiator key", key(7)),
        *chunk("13[CHD] <tunnel1|3>", "integrity responder key", key(8)),
        "13[CHD] <tunnel1|3> adding inbound ESP SA",
        "13[CHD] <tunnel1|3>   SPI 0x985d210d, src 198.51.100.11 dst 198.51.100.21",
        "13[CHD] <tunnel1|3> registering outbound ESP SA",
        "13[CHD] <tunnel1|3>   SPI 0x09b0c6be, src 198.51.100.21 dst 198.51.100.11",
        "13[CHD] <tunnel1|3> adding outbound ESP SA",
        "13[CHD] <tunnel1|3>   SPI 0x09b0c6be, src 198.51.100.21 dst 198.51.100.11",
        "13[IKE] <tunnel1|3> outbound CHILD_SA tunnel1{3} established with SPIs 985d210d_i",
    ]
)


def test_ikev2_initiator_keys_go_to_the_new_ike_sa_and_to_each_direction() -> None:
    logged = parse(IKEV2_INITIATOR)
    (ike,) = logged.ike
    assert (ike.tunnel, ike.uniqueid, ike.version) == ("tunnel1", 3, 2)
    assert ike.keys == {
        "sk_ai": hexof(key(1)),
        "sk_ar": hexof(key(2)),
        "sk_ei": hexof(key(3)),
        "sk_er": hexof(key(4)),
    }
    by_spi = {e.spi: e for e in logged.esp}
    assert list(by_spi) == ["985d210d", "09b0c6be"]  # the outbound SA once, not twice
    # The initiator's keys protect initiator -> responder: cgw's outbound SA.
    out, inbound = by_spi["09b0c6be"], by_spi["985d210d"]
    assert (out.encryption_key, out.integrity_key) == (hexof(key(5)), hexof(key(7)))
    assert (inbound.encryption_key, inbound.integrity_key) == (hexof(key(6)), hexof(key(8)))
    assert (out.src, out.dst, out.tunnel) == ("198.51.100.21", "198.51.100.11", "tunnel1")
    assert out.proposal == "aes256-sha256"
    assert logged.unmatched == []


def test_a_responder_takes_the_other_keys_and_its_deferred_outbound_sa_counts() -> None:
    text = "\n".join(
        [
            "06[ENC] <tunnel1|3> parsed QUICK_MODE request 304 [ HASH ]",
            "06[CHD] <tunnel1|3>   using AES_GCM_16 for encryption",
            *chunk("06[CHD] <tunnel1|3>", "encryption initiator key", key(5, 20)),
            *chunk("06[CHD] <tunnel1|3>", "encryption responder key", key(6, 20)),
            "06[CHD] <tunnel1|3> adding inbound ESP SA",
            "06[CHD] <tunnel1|3>   SPI 0xa498f301, src 198.51.100.11 dst 198.51.100.21",
            "06[CHD] <tunnel1|3> registering outbound ESP SA",
            "06[CHD] <tunnel1|3>   SPI 0xa3c300e1, src 198.51.100.21 dst 198.51.100.11",
            # installed later by another thread (the old SA's DELETE arrived)
            "09[CHD] <tunnel1|3> adding outbound ESP SA",
            "09[CHD] <tunnel1|3>   SPI 0xa3c300e1, src 198.51.100.21 dst 198.51.100.11",
        ]
    )
    logged = parse(text)
    by_spi = {e.spi: e for e in logged.esp}
    assert by_spi["a498f301"].encryption_key == hexof(key(5, 20))  # initiator -> us
    assert by_spi["a3c300e1"].encryption_key == hexof(key(6, 20))
    assert by_spi["a3c300e1"].integrity is None
    assert by_spi["a3c300e1"].proposal == "aes128gcm16"  # 20 bytes: 16 of key, 4 of salt
    assert logged.unmatched == []


def test_ikev1_main_mode_key_is_tied_to_the_sa_it_establishes_on_another_thread() -> None:
    text = "\n".join(
        [
            "08[ENC] <tunnel1|3> parsed ID_PROT response 0 [ KE No NAT-D NAT-D ]",
            *chunk("08[IKE] <tunnel1|3>", "SKEYID_e", key(9)),
            *chunk("08[IKE] <tunnel1|3>", "encryption key Ka", key(10)),
            *chunk("08[IKE] <tunnel1|3>", "initial IV", key(11, 16)),
            "09[ENC] <tunnel1|3> parsed ID_PROT response 0 [ ID HASH ]",
            "09[IKE] <tunnel1|3> IKE_SA tunnel1[3] established between a[a]...b[b]",
        ]
    )
    (ike,) = parse(text).ike
    assert (ike.uniqueid, ike.version, ike.keys) == (3, 1, {"ka": hexof(key(10))})


def test_ikev2_responder_rekey_keys_logged_under_the_new_sa() -> None:
    text = "\n".join(
        [
            *chunk("05[IKE] <7>", "Sk_ei secret", key(3)),
            *chunk("05[IKE] <7>", "Sk_er secret", key(4)),
            "05[IKE] <tunnel2|2> IKE_SA tunnel2[7] rekeyed between a[a]...b[b]",
        ]
    )
    (ike,) = parse(text).ike
    assert (ike.tunnel, ike.uniqueid) == ("tunnel2", 7)


def test_other_secrets_are_never_kept() -> None:
    psk = b"vpnlab-demo-key!"
    text = "\n".join(
        [
            *chunk("04[IKE] <tunnel1|1>", "secret", psk),
            *chunk("04[IKE] <tunnel1|1>", "SKEYSEED", key(40)),
            *chunk("04[CHD] <tunnel1|1>", "DH secret", key(41)),
        ]
    )
    logged = parse(text)
    assert repr(logged).count("76706e6c6162") == 0  # "vpnlab" in hex
    assert logged.ike == [] and logged.esp == []


def test_an_sa_installed_without_keys_or_a_role_is_reported_not_guessed() -> None:
    text = "\n".join(
        [
            "03[CHD] <tunnel1|1> adding inbound ESP SA",  # no parsed line: role unknown
            "03[CHD] <tunnel1|1>   SPI 0x11111111, src 1.1.1.1 dst 2.2.2.2",
        ]
    )
    logged = parse(text)
    assert logged.esp == [] and logged.unmatched == ["11111111"]


def test_a_dump_cut_short_is_dropped() -> None:
    lines = chunk("08[IKE] <tunnel1|1>", "Sk_ei secret", key(3))[:2]  # 16 of 32 bytes
    text = "\n".join([*lines, "08[IKE] <tunnel1|1> IKE_SA tunnel1[3] rekeyed between a...b"])
    assert parse(text).ike == []


def test_esp_proposal_keywords_from_logged_names() -> None:
    def esp(encr: str, size: int, integ: str | None) -> str:
        return EspKeys("1", "a", "b", encr, "00" * size, integ, "", None).proposal

    assert esp("AES_CBC", 16, "HMAC_SHA1_96") == "aes128-sha1"
    assert esp("AES_GCM_16", 36, None) == "aes256gcm16"
    assert esp("3DES", 24, "HMAC_SHA2_512_256") == "3des-sha512"


def test_the_key_logger_is_level_4_for_ike_and_chd_only() -> None:
    conf = keylog_conf(PurePosixPath("/var/lib/vpnlab/x/cgw/keys.log"))
    assert "path = /var/lib/vpnlab/x/cgw/keys.log" in conf
    for line in ("default = -1", "ike = 4", "chd = 4", "enc = 1"):
        assert line in conf
