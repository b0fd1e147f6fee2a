"""The profile's rules a template can break, read from the rendered swanctl.conf."""

from __future__ import annotations

from lab.conformance.template_rules import check
from lab.providers import swanctl_file
from lab.topology.profiles import load_profile

GOOD = """
connections {
    tunnel1 {
        rekey_time = 28800s
        dpd_delay = 10s
        children {
            tunnel1 {
                esp_proposals = aes256-sha256-modp2048
                rekey_time = 3600s
                start_action = start
                close_action = start
                dpd_action = restart
            }
        }
    }
}
"""


def results(text: str, profile: str = "tray", **overrides) -> dict:
    p = load_profile(profile)
    if overrides:
        p = p.model_copy(update=overrides)
    return {r.name.split(": ")[0]: r for r in check(swanctl_file.parse(text), p)}


def test_the_good_file_passes_every_rule():
    got = results(GOOD)
    assert set(got) == {"template lifetimes", "template keep-up"}
    assert all(r.verdict == "pass" and not r.why for r in got.values())


def test_a_24_hour_ike_lifetime_names_the_profiles_28800_s():
    got = results(GOOD.replace("rekey_time = 28800s", "rekey_time = 1d"))
    r = got["template lifetimes"]
    assert r.verdict == "fail"
    assert r.why == "rekey_time = 1d: the tray profile's IKE lifetime is at most 28800 s"


def test_child_lifetimes_below_the_minimum_and_never_rekeyed():
    short = results(GOOD.replace("rekey_time = 3600s", "rekey_time = 5m"))["template lifetimes"]
    assert (
        "tunnel1.rekey_time = 5m: the tray profile's CHILD lifetime is at least 900 s" in short.why
    )
    never = results(GOOD.replace("rekey_time = 3600s", "rekey_time = 0"))["template lifetimes"]
    assert "the CHILD SA is never rekeyed" in never.why


def test_strongswan_defaults_apply_where_a_setting_is_absent():
    """No rekey_time: strongSwan's 4 h IKE and 1 h CHILD defaults, inside the limits; no
    actions: none/clear, which leave a tunnel down."""
    text = "\n".join(
        line for line in GOOD.splitlines() if "rekey_time" not in line and "_action" not in line
    )
    got = results(text)
    assert got["template lifetimes"].verdict == "pass"
    assert "IKE rekey_time unset (14400 s)" in got["template lifetimes"].seen
    why = got["template keep-up"].why
    assert "tunnel1.start_action unset: the customer never starts the tunnel" in why
    assert "tunnel1.close_action unset" in why and "tunnel1.dpd_action unset" in why


def test_dpd_off_and_an_action_that_clears():
    got = results(GOOD.replace("dpd_delay = 10s", "dpd_delay = 0s").replace("restart", "clear"))
    why = got["template keep-up"].why
    assert "no DPD (dpd_delay unset or 0)" in why
    assert "tunnel1.dpd_action clear: a tunnel DPD declares dead stays down" in why


def test_pfs_only_where_the_profile_asks_for_it():
    without = GOOD.replace("aes256-sha256-modp2048", "aes256-sha256")
    assert "template PFS" not in results(without)
    r = results(without, pfs=True)["template PFS"]
    assert r.verdict == "fail" and r.why == "without PFS: tunnel1: aes256-sha256"
    assert results(GOOD, pfs=True)["template PFS"].verdict == "pass"
