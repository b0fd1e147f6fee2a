"""From a form file to everything a conformance run or ``form render`` needs: the form
checked against its profile, the plan, and the customer bundle rendered from templates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.core.errors import InputError, VpnlabError
from lab.providers.bundle import render_bundle, shipped_templates, write_bundle
from lab.providers.form import Form, load_form
from lab.providers.plan import Plan, context, make_plan
from lab.providers.rules import Finding, check, errors
from lab.topology.profiles import Profile, load_profile

BUNDLE_DIR = "customer"  # the customer's files, beside the lab's topology.yaml


class FormRejected(VpnlabError):
    """The form breaks its provider's rules: every broken rule, each naming its field."""

    exit_code = 2

    def __init__(self, file: str, findings: list[Finding]) -> None:
        self.file, self.findings = file, findings
        super().__init__("\n".join(f"{file}: {f}" for f in findings))


@dataclass(frozen=True)
class Prepared:
    file: Path
    form: Form
    profile: Profile
    findings: list[Finding]  # warnings only: errors stop prepare
    plan: Plan
    templates: Path
    bundle: dict[str, str]  # file name -> text, keys in it

    def write(self, out: Path) -> Path:
        """The bundle under ``out/customer/`` and the lab's ``out/topology.yaml`` that runs
        it; both readable by their owner only. Returns the topology's path."""
        write_bundle(self.bundle, out / BUNDLE_DIR)
        files = {name: f"{BUNDLE_DIR}/{name}" for name in self.bundle}
        text = yaml.safe_dump(self.plan.topology_with(files), sort_keys=False)
        (path,) = write_bundle({"topology.yaml": _header(self) + text}, out)
        return path


def _header(p: Prepared) -> str:
    return (
        f"# vpnlab conformance lab for {p.file} ({p.profile.name} profile): the provider's\n"
        f"# side from the profile, the customer gateway running {BUNDLE_DIR}/ as rendered\n"
        f"# from {p.templates}. Holds the pre-shared keys.\n"
    )


def lab_name(file: Path, prefix: str = "cf") -> str:
    """A lab name from a form's file name: ``cf-acme-bgp``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", file.stem.lower()).strip("-") or "form"
    return f"{prefix}-{slug}"[:24].rstrip("-")


def prepare(file: Path, templates: Path | None = None, name: str | None = None) -> Prepared:
    """Check, plan and render; FormRejected (every error) or InputError, exit 2, before
    anything runs."""
    form = load_form(file)
    try:
        profile = load_profile(form.provider)
    except InputError as exc:
        raise InputError(exc.field, exc.rule, exc.file or file) from None
    findings = check(form, profile)
    if errors(findings):
        raise FormRejected(str(file), errors(findings))
    plan = make_plan(form, profile, name or lab_name(file), str(file))
    templates = templates or shipped_templates(profile.templates)
    bundle = render_bundle(templates, context(plan), form.routing)
    return Prepared(file, form, profile, findings, plan, templates, bundle)
