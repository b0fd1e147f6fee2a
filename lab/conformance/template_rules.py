"""The profile's rules a customer template can break, read from the rendered swanctl.conf
before any lab runs: lifetimes inside the profile's limits, DPD on, actions that keep the
tunnels up, PFS where the profile asks for it. Each failure names the rule, the profile
and the setting that breaks it.

strongSwan's defaults apply where a setting is absent (swanctl.conf(5)): IKE rekey_time 4h,
reauth_time 0 (off); CHILD rekey_time 1h; dpd_delay 0 (off); start_action and close_action
none; dpd_action clear.
"""

from __future__ import annotations

from lab.conformance.result import result
from lab.core.results import CheckResult, verdict
from lab.topology.profiles import Profile, Range
from lab.topology.proposals import DH
from lab.topology.schema import parse_duration

IKE_REKEY_DEFAULT = 4 * 3600
CHILD_REKEY_DEFAULT = 3600
# What brings a tunnel (back) up: started at load or on traffic; after a close or DPD, started
# again or trapped. strongSwan 5.9 also takes the older names hold and restart.
KEEP_UP = {
    "start_action": {"start", "trap"},
    "close_action": {"start", "trap", "restart", "hold"},
    "dpd_action": {"restart", "trap", "hold"},
}
WHY_DOWN = {
    "start_action": "the customer never starts the tunnel and the provider's endpoint waits",
    "close_action": "a tunnel the provider closes stays down",
    "dpd_action": "a tunnel DPD declares dead stays down",
}


def check(conf: dict, profile: Profile) -> list[CheckResult]:
    """Per connection of a parsed swanctl.conf: its lifetimes, its keep-up settings and
    (if the profile asks for it) PFS."""
    out = []
    for name, conn in conf.get("connections", {}).items():
        children = conn.get("children", {})
        out.append(_lifetimes(name, conn, children, profile))
        out.append(_keep_up(name, conn, children, profile))
        if profile.pfs:
            out.append(_pfs(name, children, profile))
    return out


def _seconds(value: str | None, default: int) -> int | None:
    """A duration setting in seconds (its default if absent); None if it cannot be read."""
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _within(
    what: str, setting: str, value: str | None, default: int, limits: Range, profile: str
) -> str:
    """Why ``setting`` breaks the profile's lifetime limits, or ''."""
    seconds = _seconds(value, default)
    shown = f"{setting} = {value}" if value is not None else f"{setting} unset ({default} s)"
    if seconds is None:
        return f"{setting} = {value} is not a duration"
    if seconds == 0:
        return (
            f"{shown}: the {what} SA is never rekeyed "
            f"(the {profile} profile's {what} lifetime is {limits.min}-{limits.max} s)"
        )
    if not limits.min <= seconds <= limits.max:
        side = "at most" if seconds > limits.max else "at least"
        bound = limits.max if seconds > limits.max else limits.min
        return f"{shown}: the {profile} profile's {what} lifetime is {side} {bound} s"
    return ""


def _lifetimes(name: str, conn: dict, children: dict, p: Profile) -> CheckResult:
    ike_setting = "rekey_time"
    if _seconds(conn.get("rekey_time"), IKE_REKEY_DEFAULT) == 0 and conn.get("reauth_time"):
        ike_setting = "reauth_time"  # rekeying off, reauthentication instead
    default = IKE_REKEY_DEFAULT if ike_setting == "rekey_time" else 0
    bad = [
        why
        for why in [
            _within("IKE", ike_setting, conn.get(ike_setting), default, p.lifetimes.ike, p.name),
            *(
                _within(
                    "CHILD",
                    f"{child}.rekey_time",
                    c.get("rekey_time"),
                    CHILD_REKEY_DEFAULT,
                    p.lifetimes.child,
                    p.name,
                )
                for child, c in children.items()
            ),
        ]
        if why
    ]
    seen = [f"IKE {ike_setting} {conn.get(ike_setting, f'unset ({default} s)')}"]
    seen += [
        f"{child} rekey_time {c.get('rekey_time', f'unset ({CHILD_REKEY_DEFAULT} s)')}"
        for child, c in children.items()
    ]
    ike, child = p.lifetimes.ike, p.lifetimes.child
    return result(
        "template lifetimes",
        name,
        f"IKE {ike.min}-{ike.max} s, CHILD {child.min}-{child.max} s ({p.name} profile)",
        ", ".join(seen),
        verdict(not bad),
        "; ".join(bad),
    )


def _keep_up(name: str, conn: dict, children: dict, p: Profile) -> CheckResult:
    bad = []
    delay = _seconds(conn.get("dpd_delay"), 0)
    if not delay:
        bad.append("no DPD (dpd_delay unset or 0): a dead tunnel is never noticed")
    seen = [f"dpd_delay {conn.get('dpd_delay', 'unset')}"]
    for child, c in children.items():
        for setting, good in KEEP_UP.items():
            value = c.get(setting)
            if value not in good:
                shown = f"{value}" if value is not None else "unset"
                bad.append(
                    f"{child}.{setting} {shown}: {WHY_DOWN[setting]} "
                    f"(one of {', '.join(sorted(good))})"
                )
        seen.append(f"{child}: " + ", ".join(f"{s} {c.get(s, 'unset')}" for s in KEEP_UP))
    return result(
        "template keep-up",
        name,
        f"DPD on; every tunnel started, and started again after a close or DPD ({p.name} profile)",
        "; ".join(seen),
        verdict(not bad),
        "; ".join(bad),
    )


def _pfs(name: str, children: dict, p: Profile) -> CheckResult:
    bad = []
    for child, c in children.items():
        for proposal in [w.strip() for w in c.get("esp_proposals", "default").split(",")]:
            if proposal == "default" or not any(w in DH for w in proposal.split("-")):
                bad.append(f"{child}: {proposal}")
    return result(
        "template PFS",
        name,
        f"every ESP proposal names a DH group ({p.name} profile: PFS required)",
        "; ".join(f"{child} {c.get('esp_proposals', 'default')}" for child, c in children.items()),
        verdict(not bad),
        f"without PFS: {', '.join(bad)}" if bad else "",
    )
