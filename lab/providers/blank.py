"""``vpnlab form new``: a blank setup form for a provider, every field commented."""

from __future__ import annotations

from lab.providers.form import Form
from lab.topology.profiles import Profile

EXAMPLES = {
    "provider": None,
    "customer": '""',
    "gateway_ip": "",
    "routing": "static",
    "ike": "2",
    "tunnels": "2",
    "subnets": "[]",
}


def blank_form(profile: Profile) -> str:
    lines = [
        f"# VPN setup form for {profile.name}: {profile.description}",
        "# Fill in, then: vpnlab form check FILE; vpnlab form render FILE -o OUT;",
        "# vpnlab conformance FILE. Optional fields are commented out with their default.",
        f"provider: {profile.name}",
    ]
    for name, field in Form.model_fields.items():
        if name == "provider":
            continue
        lines.append(f"# {field.description}")
        if field.is_required() or name in EXAMPLES:
            lines.append(f"{name}: {EXAMPLES.get(name, '')}".rstrip())
        else:
            lines.append(f"# {name}: {_shown(name, field.get_default(), profile)}".rstrip())
    if profile.form_fields:
        lines.append(f"# --- fields of the {profile.name} profile ---")
    for name, spec in profile.form_fields.items():
        required = "required" if spec.required else "optional"
        kind = "true or false" if spec.kind == "flag" else "text"
        lines.append(f"# {spec.description} ({required}, {kind})")
        lines.append(f"{name}:" if spec.required else f"# {name}:")
    return "\n".join(lines) + "\n"


def _shown(name: str, default: object, profile: Profile) -> str:
    if name == "services":
        return f"[{', '.join(profile.services)}]"
    if name == "proposals":
        return f"{{ike: {profile.recommended.ike}, esp: {profile.recommended.esp}}}"
    if name == "lifetimes":
        ike, child = profile.lifetimes.ike.max, profile.lifetimes.child.max
        return f"{{ike: {ike}, child: {child}}}"
    if isinstance(default, bool):
        return str(default).lower()
    return "" if default is None else str(default)
