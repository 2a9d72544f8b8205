"""Which certificate authorities the SDK trusts for ``https://`` servers.

By default the system's: what :func:`ssl.create_default_context` loads (OpenSSL's default
locations, which ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` override; on Windows also the
system store). A custom bundle replaces them, as it does for ``requests`` and ``httpx``:
the ``ca_bundle`` option, else ``REQUESTS_CA_BUNDLE``, else ``SSL_CERT_FILE``. A bundle
that does not exist is an error naming where it was set, rather than a failed handshake
later.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

__all__ = ["BUNDLE_VARIABLES", "tls_context"]

BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
"""Environment variables naming a CA bundle, in order of preference."""


def tls_context(
    ca_bundle: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> ssl.SSLContext:
    """A verifying client context trusting ``ca_bundle``, the environment's bundle or the
    system's CAs."""
    found = _bundle(ca_bundle, environ)
    if found is None:
        return ssl.create_default_context()
    source, path = found
    if path.is_dir():
        return ssl.create_default_context(capath=path)
    if not path.is_file():
        raise ValueError(f"{source}: no CA bundle at {str(path)!r}")
    try:
        return ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise ValueError(f"{source}: {str(path)!r} holds no usable certificate ({exc})") from None


def _bundle(
    ca_bundle: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> tuple[str, Path] | None:
    if ca_bundle is not None and os.fspath(ca_bundle):
        return "ca_bundle", Path(ca_bundle)
    for name in BUNDLE_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return name, Path(value)
    return None
