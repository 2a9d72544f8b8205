"""Which CAs the SDK trusts: the system's, or a bundle from the option or the environment."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from lockgate.sdk.trust import tls_context
from tests.sdk.tls import Certificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate(tmp_path_factory.mktemp("trust"))


def subjects(context: ssl.SSLContext) -> list[str]:
    """Common names of the CA certificates a context holds (loaded from files)."""
    names: list[str] = []
    for cert in context.get_ca_certs():
        subject: tuple[tuple[tuple[str, str], ...], ...] = cert["subject"]  # type: ignore[assignment]
        names += [value for rdn in subject for key, value in rdn if key == "commonName"]
    return names


def test_default_is_a_verifying_context_without_the_test_ca() -> None:
    context = tls_context(None, {})
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert "lockgate test" not in subjects(context)


@pytest.mark.parametrize(
    ("option", "environ_names"),
    [
        pytest.param(True, [], id="option"),
        pytest.param(False, ["REQUESTS_CA_BUNDLE"], id="requests-ca-bundle"),
        pytest.param(False, ["SSL_CERT_FILE"], id="ssl-cert-file"),
    ],
)
def test_a_bundle_replaces_the_system_cas(
    certificate: Certificate, option: bool, environ_names: list[str]
) -> None:
    environ = {name: str(certificate.cert_file) for name in environ_names}
    context = tls_context(certificate.cert_file if option else None, environ)
    assert subjects(context) == ["lockgate test"]
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_the_option_wins_over_the_environment(certificate: Certificate, tmp_path: Path) -> None:
    environ = {"REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem")}
    assert subjects(tls_context(str(certificate.cert_file), environ)) == ["lockgate test"]


def test_requests_ca_bundle_wins_over_ssl_cert_file(
    certificate: Certificate, tmp_path: Path
) -> None:
    environ = {
        "REQUESTS_CA_BUNDLE": str(certificate.cert_file),
        "SSL_CERT_FILE": str(tmp_path / "missing.pem"),
    }
    assert subjects(tls_context(None, environ)) == ["lockgate test"]


def test_a_directory_bundle_is_accepted(tmp_path: Path) -> None:
    # An OpenSSL hashed directory: certificates are looked up in it at handshake time.
    context = tls_context(None, {"REQUESTS_CA_BUNDLE": str(tmp_path)})
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert subjects(context) == []


@pytest.mark.parametrize(
    ("option", "environ", "source"),
    [
        pytest.param("missing.pem", {}, "ca_bundle", id="option"),
        pytest.param(None, {"REQUESTS_CA_BUNDLE": "missing.pem"}, "REQUESTS_CA_BUNDLE", id="req"),
        pytest.param(None, {"SSL_CERT_FILE": "missing.pem"}, "SSL_CERT_FILE", id="ssl-cert-file"),
    ],
)
def test_a_missing_bundle_is_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: str | None,
    environ: dict[str, str],
    source: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=rf"^{source}: no CA bundle at 'missing.pem'$"):
        tls_context(option, environ)


def test_a_bundle_without_certificates_is_named(tmp_path: Path) -> None:
    bundle = tmp_path / "empty.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"^ca_bundle: .*empty\.pem' holds no usable certificate"):
        tls_context(bundle, {})
