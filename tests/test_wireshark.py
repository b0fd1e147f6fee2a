"""Wireshark's key tables from strongSwan's terms: names, quoting, row layout."""

from __future__ import annotations

import pytest

from lab.ops import wireshark as ws


@pytest.mark.parametrize(
    ("proposal", "encr", "integ"),
    [
        ("aes256-sha256", "AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]"),
        ("aes128-sha1-modp2048", "AES-CBC [RFC3602]", "HMAC-SHA-1-96 [RFC2404]"),
        ("aes128gcm16", "AES-GCM with 16 octet ICV [RFC4106]", "NULL"),
        ("aes256gcm16-modp2048", "AES-GCM with 16 octet ICV [RFC4106]", "NULL"),
        ("aes128gcm", "AES-GCM with 16 octet ICV [RFC4106]", "NULL"),
        ("aes128gcm8", "AES-GCM with 8 octet ICV [RFC4106]", "NULL"),
        ("3des-md5", "TripleDES-CBC [RFC2451]", "HMAC-MD5-96 [RFC2403]"),
        ("aes192-sha512-esn", "AES-CBC [RFC3602]", "HMAC-SHA-512-256 [RFC4868]"),
    ],
)
def test_esp_names(proposal: str, encr: str, integ: str) -> None:
    assert ws.algorithms(proposal, ws.ESP_ENCRYPTION, ws.ESP_INTEGRITY, "NULL") == (encr, integ)


@pytest.mark.parametrize(
    ("proposal", "encr", "integ"),
    [
        ("aes256-sha256-modp2048", "AES-CBC-256 [RFC3602]", "HMAC_SHA2_256_128 [RFC4868]"),
        ("aes128-sha1-modp1024", "AES-CBC-128 [RFC3602]", "HMAC_SHA1_96 [RFC2404]"),
        (
            "aes128gcm16-prfsha256-ecp256",
            "AES-GCM-128 with 16 octet ICV [RFC5282]",
            "NONE [RFC4306]",
        ),
        (
            "aes256gcm12-prfsha384-modp2048",
            "AES-GCM-256 with 12 octet ICV [RFC5282]",
            "NONE [RFC4306]",
        ),
        ("3des-sha384-modp1536", "3DES [RFC2451]", "HMAC_SHA2_384_192 [RFC4868]"),
    ],
)
def test_ikev2_names(proposal: str, encr: str, integ: str) -> None:
    got = ws.algorithms(proposal, ws.IKEV2_ENCRYPTION, ws.IKEV2_INTEGRITY, ws.IKEV2_NO_INTEGRITY)
    assert got == (encr, integ)


@pytest.mark.parametrize("proposal", ["aes256-aesxcbc", "camellia128-sha256", "sha256-modp2048"])
def test_an_algorithm_wireshark_cannot_use_is_named(proposal: str) -> None:
    with pytest.raises(ws.UnknownAlgorithm, match=proposal):
        ws.algorithms(proposal, ws.ESP_ENCRYPTION, ws.ESP_INTEGRITY, "NULL")


def test_esp_row_is_all_quoted_text_with_0x_hex() -> None:
    row = ws.EspRow("985d210d", "aes256-sha256", "AB" * 32, "cd" * 32)
    assert row.line() == (
        '"IPv4","*","*","0x985d210d","AES-CBC [RFC3602]","0x' + "ab" * 32 + '",'
        '"HMAC-SHA-256-128 [RFC4868]","0x' + "cd" * 32 + '"'
    )


def test_esp_gcm_row_has_null_authentication_and_no_key() -> None:
    row = ws.EspRow("0x0000abcd", "aes128gcm16", "11" * 20, "", src="198.51.100.21")
    assert row.line().endswith(
        '"AES-GCM with 16 octet ICV [RFC4106]","0x' + "11" * 20 + '","NULL",""'
    )
    assert row.line().startswith('"IPv4","198.51.100.21","*","0x0000abcd",')


def test_ikev2_row_has_bare_hex_and_quoted_names() -> None:
    row = ws.Ikev2Row("f9ec5d8f666d8537", "2fe9d30c96c16eba", "aes256-sha256-modp2048",
                      "01" * 32, "02" * 32, "03" * 32, "04" * 32)  # fmt: skip
    assert row.line() == ",".join(
        [
            "f9ec5d8f666d8537",
            "2fe9d30c96c16eba",
            "01" * 32,
            "02" * 32,
            '"AES-CBC-256 [RFC3602]"',
            "03" * 32,
            "04" * 32,
            '"HMAC_SHA2_256_128 [RFC4868]"',
        ]
    )


def test_ikev2_aead_row_leaves_the_integrity_keys_empty() -> None:
    row = ws.Ikev2Row("aa" * 8, "bb" * 8, "aes128gcm16-prfsha256-modp2048", "01" * 20, "02" * 20)
    fields = row.line().split(",")
    assert fields[5:] == ["", "", '"NONE [RFC4306]"']


def test_ikev1_row() -> None:
    assert (
        ws.Ikev1Row("1C6BF65397AA6AA9", "0x" + "ab" * 32).line() == "1c6bf65397aa6aa9," + "ab" * 32
    )


@pytest.mark.parametrize("bad", ["", "abc", "0xzz", "12 34"])
def test_hexbytes_refuses_what_is_not_hex(bad: str) -> None:
    with pytest.raises(ValueError):
        ws.hexbytes(bad)


def test_quoting_escapes_quotes_backslashes_and_control_characters() -> None:
    assert ws.quoted('a"b\\c\n') == '"a\\x22b\\x5cc\\x0a"'
    assert ws.quoted("AES-CBC [RFC3602]") == '"AES-CBC [RFC3602]"'


def test_a_table_starts_with_wiresharks_header_and_ends_each_row() -> None:
    rows = [ws.Ikev1Row("aa" * 8, "bb" * 16), ws.Ikev1Row("cc" * 8, "dd" * 16)]
    text = ws.table(rows)
    assert text.splitlines()[0].startswith("#")
    assert text.endswith("\n") and len(text.splitlines()) == 3
