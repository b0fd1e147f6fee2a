"""The Docker engine client the whole project uses: one place that connects, negotiates the
API version and says clearly when no engine answers."""

from __future__ import annotations

from lab.core.errors import VpnlabError

LABEL = "vpnlab"  # every image, container and network vpnlab makes: vpnlab=1


class DockerError(VpnlabError):
    """The Docker engine is missing, did not answer, or refused."""


def client(timeout: float = 60):
    """A Docker SDK client with the API version negotiated (the daemon here speaks 1.41)."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a dependency of vpnlab
        raise DockerError("the docker Python package is missing (pip install -e .)") from exc
    try:
        c = docker.from_env(version="auto", timeout=timeout)
        c.ping()
    except Exception as exc:
        raise DockerError(
            f"no Docker daemon answers ({short_error(exc)}); bash scripts/setup.sh test starts one"
        ) from exc
    return c


def answering_client():
    """A Docker client when an engine answers within 5 s (one connection, one ping), else
    None."""
    try:
        return client(timeout=5)
    except DockerError:
        return None


def daemon_available() -> bool:
    return answering_client() is not None


def short_error(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())[:200]


def image_or_none(c, ref: str):
    import docker.errors

    try:
        return c.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
