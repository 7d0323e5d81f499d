"""The Feast repo's configuration, rendered from settings: ``feature_store.yaml`` and a definitions module.

The Feast repo directory is ``settings.paths.feast``: a rendered ``feature_store.yaml`` (online store
derived from :func:`aisle.core.endpoints.redis_url`) plus a rendered ``aisle_definitions.py`` that builds
the objects from the same settings, so ``feast plan``/``feast apply`` run there see the real definitions
instead of an empty repo (``feast apply`` on an empty repo would delete every registered view).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from aisle.core.errors import BadInput
from aisle.core.settings import Settings

PROJECT: Final = "aisle"
YAML_NAME: Final = "feature_store.yaml"
DEFINITIONS_NAME: Final = "aisle_definitions.py"
# How long a first connection attempt may take before Redis counts as unreachable.
CONNECT_TIMEOUT_S: Final = 2.0
# How long one Redis command may wait for its answer: a hung server ends a read or write after this
# (materialization writes in pipelines of modest size, well within it); request paths bound their own
# wait with a shorter ``timeout_s`` (see ``feature_repo.online.online_users``).
SOCKET_TIMEOUT_S: Final = 10.0


def feast_connection_string(url: str) -> str:
    """Turn a redis URL (``redis://[user:pass@]host:port/db``, ``rediss://`` for TLS) into Feast's
    ``host:port,db=N[,ssl=true][,username=..][,password=..]`` form.

    Feast splits that string on ``,`` and ``=``, so credentials containing either cannot be passed
    through it; that is refused here with a clear message rather than mangled.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise BadInput(f"Redis URL {url!r} is not redis:// or rediss://; Feast's Redis store needs host:port")
    if not parts.hostname:
        raise BadInput(f"Redis URL {url!r} names no host")
    try:
        port = parts.port or 6379
    except ValueError:
        raise BadInput(f"Redis URL {url!r} has an invalid port") from None
    db_text = parts.path.strip("/") or parse_qs(parts.query).get("db", ["0"])[0]
    if not db_text.isdigit():
        raise BadInput(f"Redis URL {url!r} has an invalid database number {db_text!r}")
    if ":" in parts.hostname:
        raise BadInput(
            f"Redis URL {url!r}: Feast's connection string cannot carry an IPv6 address; use a name"
        )
    items = [
        f"{parts.hostname}:{port}",
        f"db={int(db_text)}",
        f"socket_connect_timeout={CONNECT_TIMEOUT_S}",
        f"socket_timeout={SOCKET_TIMEOUT_S}",
    ]
    if parts.scheme == "rediss":
        items.append("ssl=true")
    for key, raw in (("username", parts.username), ("password", parts.password)):
        if raw:
            value = unquote(raw)
            if "," in value or "=" in value:
                raise BadInput(
                    f"the Redis {key} contains ',' or '=', which Feast's connection string cannot carry"
                )
            items.append(f"{key}={value}")
    return ",".join(items)


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _config(settings: Settings, redis_address: str) -> dict[str, Any]:
    registry: dict[str, Any]
    if settings.feast_registry_url:
        registry = {"registry_type": "sql", "path": settings.feast_registry_url, "cache_ttl_seconds": 60}
    else:
        registry = {
            "registry_type": "file",
            "path": str(settings.paths.feast / "registry.db"),
            "cache_ttl_seconds": 60,
        }
    return {
        "project": PROJECT,
        "provider": "local",
        "registry": registry,
        "offline_store": {"type": "duckdb"},
        "online_store": {"type": "redis", "connection_string": feast_connection_string(redis_address)},
        "entity_key_serialization_version": 3,
    }


_DEFINITIONS_TEMPLATE = '''\
"""Rendered by feature_repo.config; do not edit. Lets the `feast` CLI run here see Aisle's definitions."""

from pathlib import Path

from aisle.core.settings import load_settings
from feature_repo.materialization import definitions

for _obj in definitions(load_settings(home=Path({home!r}))):
    globals()[f"{{type(_obj).__name__}}_{{_obj.name}}"] = _obj
'''


def render_feature_store_yaml(settings: Settings) -> Path:
    """Write ``feature_store.yaml`` (and the CLI's definitions module) under ``settings.paths.feast``.

    The online store address comes from :func:`aisle.core.endpoints.redis_url`, so it follows the embedded
    Redis to whatever port it runs on; raises ServiceUnavailable when no Redis is configured or running.
    """
    from aisle.core.endpoints import redis_url

    return render(settings, redis_url(settings))


def render(settings: Settings, redis_address: str) -> Path:
    repo = settings.paths.feast
    try:
        repo.mkdir(parents=True, exist_ok=True)
        text = "# Rendered from Aisle settings by feature_repo.config; edits are overwritten.\n"
        text += yaml.safe_dump(_config(settings, redis_address), sort_keys=False)
        _write_if_changed(repo / YAML_NAME, text)
        _write_if_changed(
            repo / DEFINITIONS_NAME, _DEFINITIONS_TEMPLATE.format(home=str(settings.paths.home))
        )
    except OSError as exc:
        raise BadInput(f"cannot write the Feast repo under {repo} ({exc.strerror or exc})") from None
    return repo / YAML_NAME


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic, and only when different, so a concurrent reader never sees half a file. Owner-only, as
    the yaml carries the Redis password when the URL has one."""
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)
