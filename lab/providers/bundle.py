"""The customer's bundle: a directory of Jinja templates (``<file>.j2``) rendered with a
plan's variables. An undefined variable is an error that names the template, the line and
the variable, never an empty string in a config that then fails in the field."""

from __future__ import annotations

import traceback
from pathlib import Path

import jinja2

from lab.core.errors import InputError
from lab.core.shipped import PROFILES, shipped
from lab.providers.plan import Vars


class NamedUndefined(jinja2.StrictUndefined):
    """StrictUndefined whose message says ``tunnel.pks``, not ``'dict object' has no
    attribute 'pks'``."""

    @property
    def _undefined_message(self) -> str:
        owner = self._undefined_obj
        if isinstance(owner, Vars):
            return f"undefined variable {owner.kind}.{self._undefined_name}"
        if owner is jinja2.utils.missing:
            return f"undefined variable {self._undefined_name}"
        return f"undefined attribute {self._undefined_name!r} of a {type(owner).__name__}"


def shipped_templates(name: str) -> Path:
    """A template set shipped with vpnlab (``strongswan``)."""
    return shipped(PROFILES) / "templates" / name


def render_bundle(templates: Path, variables: dict, routing: str) -> dict[str, str]:
    """Output file name -> text for every ``*.j2`` in ``templates``. ``frr.conf`` is
    rendered only for a BGP-routed VPN."""
    if not templates.is_dir():
        raise InputError("--templates", "no such directory", templates)
    names = sorted(p.name for p in templates.glob("*.j2"))
    if "swanctl.conf.j2" not in names:
        raise InputError("swanctl.conf.j2", "the template directory has none", templates)
    if routing == "bgp" and "frr.conf.j2" not in names:
        raise InputError("frr.conf.j2", "a BGP-routed VPN needs an FRR template", templates)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=NamedUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # configs, not HTML
    )
    out = {}
    for name in names:
        target = name.removesuffix(".j2")
        if target == "frr.conf" and routing != "bgp":
            continue
        path = templates / name
        try:
            out[target] = env.get_template(name).render(**variables)
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"line {exc.lineno}", f"syntax: {exc.message}", path) from None
        except jinja2.UndefinedError as exc:
            raise InputError(f"line {_line(exc, path)}", str(exc), path) from None
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            raise InputError(f"line {_line(exc, path)}", f"template error: {exc}", path) from None
    return out


def _line(exc: BaseException, path: Path) -> str:
    """The template line an exception was raised from (Jinja maps its frames to it)."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return str(lines[-1]) if lines else "?"


def write_bundle(files: dict[str, str], out: Path) -> list[Path]:
    """Write the files, readable by their owner only: they hold the keys."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(text)
        written.append(path)
    return written
