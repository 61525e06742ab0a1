"""Optional TLS: one certificate for every listener (https and wss on the API port,
wss on the hub port). Checked once at start, so a bad file is a ConfigError naming the
key rather than a listener that dies later."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from ratehubd.config import ServerConfig
from ratehubd.errors import ConfigError

CERT_KEY = "server.tls_cert_file"
KEY_KEY = "server.tls_key_file"


def _read(key: str, path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror or exc}") from None


def _no_password(key: str) -> Callable[[], str]:
    def refuse() -> str:  # else OpenSSL would prompt on the terminal and hang the start
        raise ConfigError(f"{key}: the private key is encrypted; give an unencrypted PEM key")

    return refuse


def server_context(cfg: ServerConfig) -> ssl.SSLContext | None:
    """The server's SSLContext, or None when TLS is off; ConfigError naming the key at
    fault when a file is missing, unreadable, not PEM, or the key does not match."""
    if not cfg.tls_cert_file:
        return None
    cert_text = _read(CERT_KEY, cfg.tls_cert_file)
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        raise ConfigError(
            f"{CERT_KEY}: {cfg.tls_cert_file} holds no PEM certificate "
            "('-----BEGIN CERTIFICATE-----')"
        )
    key_name, key_path = (KEY_KEY, cfg.tls_key_file) if cfg.tls_key_file else (CERT_KEY, "")
    key_text = _read(KEY_KEY, key_path) if key_path else cert_text
    if "PRIVATE KEY-----" not in key_text:
        where = key_path or cfg.tls_cert_file
        raise ConfigError(
            f"{key_name}: {where} holds no PEM private key; set {KEY_KEY} to the key file"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cfg.tls_cert_file, key_path or None, password=_no_password(key_name))
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "MISMATCH" in str(reason).upper():
            raise ConfigError(
                f"{key_name}: the private key does not match the certificate in {cfg.tls_cert_file}"
            ) from None
        raise ConfigError(
            f"{CERT_KEY} / {KEY_KEY}: cannot load the certificate and key ({reason}); "
            "both must be PEM, the key unencrypted"
        ) from None
    return ctx
