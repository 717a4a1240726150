"""Settings from environment variables (ECPA_*) or an ``ecpa.toml`` file.

Environment variables win over the file.  The file is looked up at the path in
``ECPA_CONFIG``, else ``./ecpa.toml``.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def config_path() -> Path:
    return Path(os.environ.get("ECPA_CONFIG", "ecpa.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ECPA_", extra="ignore")

    # SQLite file by default so that one command runs the demo on a fresh machine.
    database_url: str = "sqlite:///ecpa.db"
    # PostgreSQL connection pool per process (a request may hold two connections briefly).
    db_pool_size: int = 10
    db_max_overflow: int = 20
    # Key material for personal data (ID and phone numbers): encryption and keyed hashes.
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Lifetime of an API bearer token.
    token_hours: int = 12
    # How long a process may keep a checked bearer token in memory instead of asking the
    # database on every request: a disabled account is refused after at most this long.
    token_cache_seconds: int = 30
    # How long a process may keep reference data that every checkout reads (delivery
    # zones, stations, campaigns) before reading it again (ecpa/refcache.py).
    reference_cache_seconds: int = 5
    # Threads for the API's synchronous routes in each server process (AnyIO's default
    # is 40). Measured on 2 cores, 2 processes, 32 clients checking out: 2 threads 432
    # orders/s (p99 107 ms), 4: 371 (139 ms), 8: 366 (206 ms), 16: 343 (717 ms), 1: 293.
    # More threads only fight over the GIL; run more processes for more throughput.
    api_threads: int = 2
    # On PostgreSQL, a checkout of listed items whose buyer, SKUs and delivery route
    # are known in memory is done in one SQL statement on the event loop
    # (market/fastlane.py); anything else goes the ordinary way.
    checkout_fast_lane: bool = True
    # Its connections per server process: statements beyond about one per core only
    # queue for the same SKU rows inside PostgreSQL and lengthen the tail (measured with
    # benchmarks/checkout_http.py on 2 cores, 2 processes: 2 beat 3 and 4).
    checkout_lane_connections: int = 2
    # Whether the lane's reservations wait for the disk before answering (market/fastlane.py).
    checkout_lane_wait_for_flush: bool = True
    # Domain of the GS1 Digital Link URIs in batch QR codes (ECPA's own resolver, if any).
    trace_resolver: str = "https://id.gs1.org"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_path()),
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()


def write_default_config(path: Path | None = None, database_url: str | None = None) -> Path:
    """Write an ``ecpa.toml`` with a fresh random secret key, unless one exists."""
    path = path or config_path()
    if path.exists():
        return path
    lines = [
        "# ECPA settings; environment variables ECPA_* override these.",
        "# Keep secret_key safe: without it the stored ID and phone numbers cannot be read.",
        f'secret_key = "{secrets.token_urlsafe(32)}"',
    ]
    if database_url:
        lines.append(f'database_url = "{database_url}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    reset_settings()
    return path
