"""Signature verification needs a trust anchor and validates the whole chain (signer ->
intermediates -> anchor) at the signing time; SHA-1 is refused. Certificates are made here,
relative to the time the test makes them; the signing time is the one the signature carries."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from soc.cli import app
from soc.export.sign import keygen, sign_bytes, sign_file, verify_bytes, verify_file

DATA = '{"report_no": "BC03-NA01-20261201-INC-1-1", "tóm_tắt": "dò mật khẩu"}\n'.encode()


@dataclass
class Pki:
    """root -> intermediate -> signer, plus the files they are in."""

    folder: Path
    root: x509.Certificate
    root_key: Any
    intermediate: x509.Certificate
    intermediate_key: Any
    signer: x509.Certificate
    signer_key: Any

    def pem(self, name: str, *certs: x509.Certificate) -> Path:
        path = self.folder / name
        path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        return path


def _issue(folder: Path, name: str, issuer: tuple[x509.Certificate, Any] | None = None, *, ca: bool | None = None,
           not_before: dt.datetime | None = None, days: int = 30) -> tuple[x509.Certificate, Any]:
    cert = keygen(folder / f"{name}.pem", folder / f"{name}-key.pem", name, "Công an tỉnh (TEST)", days=days,
                  not_before=not_before, issuer=issuer, ca=ca)
    key = serialization.load_pem_private_key((folder / f"{name}-key.pem").read_bytes(), None)
    return cert, key


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    root = _issue(tmp_path, "Root CA (TEST)")
    intermediate = _issue(tmp_path, "Intermediate CA (TEST)", root, ca=True)
    signer = _issue(tmp_path, "SOC tỉnh (TEST)", intermediate)
    return Pki(tmp_path, *root, *intermediate, *signer)


def _sign_with_chain(data: bytes, signer: x509.Certificate, key: Any, *extra: x509.Certificate) -> bytes:
    """Like :func:`sign_bytes`, with extra certificates embedded in the CMS certificate set."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(signer, key, hashes.SHA256())
    for cert in extra:
        builder = builder.add_certificate(cert)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                                     pkcs7.PKCS7Options.Binary])


def _sha1_signature(data: bytes, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A well-formed CMS signature made with SHA-1 (cryptography no longer makes them): digest
    algorithm, message digest and signature over the signed attributes all SHA-1."""
    info = cms.ContentInfo.load(sign_bytes(data, cert, key))
    signed = info["content"]
    signer_info = signed["signer_infos"][0]
    sha1 = algos.DigestAlgorithm({"algorithm": "sha1"})
    signed["digest_algorithms"] = [sha1]
    signer_info["digest_algorithm"] = sha1
    attrs = signer_info["signed_attrs"]
    for attr in attrs:
        if attr["type"].native == "message_digest":
            attr["values"] = [hashlib.sha1(data).digest()]
    signer_info["signature_algorithm"] = algos.SignedDigestAlgorithm({"algorithm": "sha1_ecdsa"})
    signer_info["signature"] = key.sign(b"\x31" + attrs.dump(force=True)[1:], ec.ECDSA(hashes.SHA1()))
    return info.dump(force=True)


def _resigned_with_sha1(cert: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """The same certificate, signed by its issuer with ECDSA-SHA1."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha1_ecdsa"})
    parsed["tbs_certificate"]["signature"] = algorithm
    parsed["signature_algorithm"] = algorithm
    parsed["signature_value"] = issuer_key.sign(parsed["tbs_certificate"].dump(force=True), ec.ECDSA(hashes.SHA1()))
    return x509.load_der_x509_certificate(parsed.dump(force=True))


# -- a trust anchor is required --------------------------------------------------------------------
def test_without_a_trust_anchor_it_is_never_ok(pki: Pki) -> None:
    signature = sign_bytes(DATA, pki.signer, pki.signer_key)
    for result in (verify_bytes(DATA, signature), verify_bytes(DATA, signature, [])):
        assert not result.ok and not result.trusted
        assert "no trust anchor" in result.summary() and "--ca" in result.summary()
        assert "reporting.certificate" in result.summary()
    # everything else about it is fine: the anchor is what was missing
    assert verify_bytes(DATA, signature, pki.root, intermediates=[pki.intermediate]).ok


def test_a_self_signed_province_certificate_as_its_own_anchor_verifies(tmp_path: Path) -> None:
    cert, key = _issue(tmp_path, "SOC tỉnh Nghệ An (TEST)")
    result = verify_bytes(DATA, sign_bytes(DATA, cert, key), cert)
    assert result.ok and result.trusted, result.summary()
    assert result.chain == [cert.subject.rfc4514_string()]


def test_the_signer_certificate_itself_can_be_pinned_as_the_anchor(pki: Pki) -> None:
    result = verify_bytes(DATA, sign_bytes(DATA, pki.signer, pki.signer_key), pki.signer)
    assert result.ok and result.chain == [pki.signer.subject.rfc4514_string()], result.summary()


def test_verification_also_works_inside_a_running_event_loop(pki: Pki) -> None:
    signature = sign_bytes(DATA, pki.signer, pki.signer_key)

    async def check() -> bool:
        return verify_bytes(DATA, signature, pki.root, intermediates=[pki.intermediate]).ok

    assert asyncio.run(check())


def test_a_signer_certificate_not_for_signing_is_refused(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    made = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TLS only")]))
            .issuer_name(pki.intermediate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(made - dt.timedelta(minutes=5))
            .not_valid_after(made + dt.timedelta(days=10))
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(pki.intermediate_key, hashes.SHA256()))
    result = verify_bytes(DATA, sign_bytes(DATA, cert, key), pki.root, intermediates=[pki.intermediate])
    assert not result.ok and "key usage" in result.summary(), result.summary()


# -- the whole chain -------------------------------------------------------------------------------
def test_root_intermediate_signer_verifies_with_the_root_as_anchor(pki: Pki) -> None:
    embedded = _sign_with_chain(DATA, pki.signer, pki.signer_key, pki.intermediate)
    result = verify_bytes(DATA, embedded, pki.root)  # the intermediate comes from the CMS certificate set
    assert result.ok and result.trusted, result.summary()
    assert result.chain == [c.subject.rfc4514_string() for c in (pki.signer, pki.intermediate, pki.root)]
    assert "Root CA (TEST)" in result.summary() and result.summary().startswith("OK")
    # the intermediate may also come from a file (--intermediates)
    path = pki.folder / "report.json"
    path.write_bytes(DATA)
    sign_file(path, pki.signer, pki.signer_key)
    root_pem = pki.pem("root-only.pem", pki.root)
    assert verify_file(path, trust_path=root_pem, intermediates_path=pki.pem("chain.pem", pki.intermediate)).ok
    # without it there is no path to the root
    missing = verify_file(path, trust_path=root_pem)
    assert not missing.ok and "wrong certificate" in missing.summary() and "--intermediates" in missing.summary()
    # the intermediate as the anchor works too (a province that trusts its issuing CA directly)
    assert verify_file(path, trust_path=pki.pem("intermediate.pem", pki.intermediate)).ok
    # and a bundle of anchors: the one that fits is used
    other, _ = _issue(pki.folder, "Other Root (TEST)")
    assert verify_file(path, trust_path=pki.pem("bundle.pem", other, pki.intermediate)).ok


def test_a_signer_issued_by_another_root_fails(pki: Pki, tmp_path: Path) -> None:
    other_root = _issue(tmp_path / "other", "Other Root CA (TEST)")
    impostor, impostor_key = _issue(tmp_path / "other", "SOC tỉnh (TEST)", other_root)
    result = verify_bytes(DATA, _sign_with_chain(DATA, impostor, impostor_key, other_root[0]), pki.root)
    assert not result.ok and not result.trusted and "wrong certificate" in result.summary(), result.summary()
    # a look-alike hierarchy (same names, other keys) does not pass either: its signatures do not verify
    fake_root = _issue(tmp_path / "fake", "Root CA (TEST)")
    fake_intermediate = _issue(tmp_path / "fake", "Intermediate CA (TEST)", fake_root, ca=True)
    fake, fake_key = _issue(tmp_path / "fake", "SOC tỉnh (TEST)", fake_intermediate)
    for intermediates in ([], [pki.intermediate]):
        result = verify_bytes(DATA, _sign_with_chain(DATA, fake, fake_key, fake_intermediate[0]), pki.root,
                              intermediates=intermediates)
        assert not result.ok and not result.trusted and "could not be verified" in result.summary(), \
            result.summary()


def test_an_intermediate_that_is_not_a_ca_cannot_issue(tmp_path: Path) -> None:
    root = _issue(tmp_path, "Root CA (TEST)")
    not_a_ca = _issue(tmp_path, "Ordinary holder (TEST)", root)  # ca=False, no keyCertSign
    signer, key = _issue(tmp_path, "SOC tỉnh (TEST)", not_a_ca)
    result = verify_bytes(DATA, _sign_with_chain(DATA, signer, key, not_a_ca[0]), root[0])
    assert not result.ok and not result.trusted, result.summary()


# -- time ------------------------------------------------------------------------------------------
def test_a_signer_expired_at_the_signing_time_fails(tmp_path: Path) -> None:
    made = dt.datetime.now(dt.UTC)
    root = _issue(tmp_path, "Root CA (TEST)", not_before=made - dt.timedelta(days=100), days=3650)
    signer, key = _issue(tmp_path, "SOC tỉnh (TEST)", root, not_before=made - dt.timedelta(days=10), days=5)
    result = verify_bytes(DATA, sign_bytes(DATA, signer, key), root[0])
    assert result.signed_at is not None and result.signed_at >= made - dt.timedelta(minutes=1)
    assert not result.ok and "not valid at the signing time" in result.summary(), result.summary()


def test_an_intermediate_expired_at_the_signing_time_fails(tmp_path: Path) -> None:
    made = dt.datetime.now(dt.UTC)
    root = _issue(tmp_path, "Root CA (TEST)", not_before=made - dt.timedelta(days=100), days=3650)
    intermediate = _issue(tmp_path, "Intermediate CA (TEST)", root, ca=True,
                          not_before=made - dt.timedelta(days=10), days=5)
    signer, key = _issue(tmp_path, "SOC tỉnh (TEST)", intermediate)  # itself valid now
    result = verify_bytes(DATA, _sign_with_chain(DATA, signer, key, intermediate[0]), root[0])
    assert not result.ok and "signing time" in result.summary() and "expired" in result.summary(), result.summary()


def test_a_root_expired_at_the_signing_time_fails(tmp_path: Path) -> None:
    made = dt.datetime.now(dt.UTC)
    root = _issue(tmp_path, "Root CA (TEST)", not_before=made - dt.timedelta(days=10), days=5)
    signer, key = _issue(tmp_path, "SOC tỉnh (TEST)", root)
    result = verify_bytes(DATA, sign_bytes(DATA, signer, key), root[0])
    assert not result.ok and "the CA certificate" in result.summary() and "Root CA" in result.summary()


def test_a_chain_expired_by_now_fails_even_if_valid_at_the_signing_time(pki: Pki) -> None:
    signature = _sign_with_chain(DATA, pki.signer, pki.signer_key, pki.intermediate)
    ok = verify_bytes(DATA, signature, pki.root)
    assert ok.ok and ok.signed_at is not None
    later = verify_bytes(DATA, signature, pki.root, now=ok.signed_at + dt.timedelta(days=31))
    assert not later.ok and "expired" in later.summary(), later.summary()
    assert verify_bytes(DATA, signature, pki.root, now=ok.signed_at + dt.timedelta(days=29)).ok


# -- SHA-1 -----------------------------------------------------------------------------------------
def test_a_sha1_signature_is_refused(pki: Pki) -> None:
    signature = _sha1_signature(DATA, pki.signer, pki.signer_key)
    result = verify_bytes(DATA, signature, pki.root, intermediates=[pki.intermediate])
    assert not result.ok and "SHA1" in result.summary() and "refused" in result.summary(), result.summary()


def test_a_sha1_certificate_in_the_chain_is_refused(pki: Pki) -> None:
    weak = _resigned_with_sha1(pki.signer, pki.intermediate_key)
    signature = sign_bytes(DATA, weak, pki.signer_key)  # the CMS itself is SHA-256
    result = verify_bytes(DATA, signature, pki.root, intermediates=[pki.intermediate])
    assert not result.ok and "weak" in result.summary() and "sha1" in result.summary().lower(), result.summary()


# -- OpenSSL agrees -------------------------------------------------------------------------------
def _openssl_verify(path: Path, signature: Path, ca_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
                           "-content", str(path), "-CAfile", str(ca_file), "-purpose", "any", "-out", "/dev/null"],
                          capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_agrees_on_chained_signatures(pki: Pki) -> None:
    path = pki.folder / "report.json"
    path.write_bytes(DATA)
    root = pki.pem("root.pem", pki.root)
    # the intermediate embedded in the CMS: the root alone is the anchor, for both
    embedded = pki.folder / "embedded.p7s"
    embedded.write_bytes(_sign_with_chain(DATA, pki.signer, pki.signer_key, pki.intermediate))
    run = _openssl_verify(path, embedded, root)
    assert run.returncode == 0, run.stderr
    assert verify_file(path, embedded, trust_path=root).ok
    # our signatures embed the signer only: OpenSSL then needs the intermediate in its CA file
    sign_file(path, pki.signer, pki.signer_key)
    run = _openssl_verify(path, Path(f"{path}.p7s"), pki.pem("root+inter.pem", pki.root, pki.intermediate))
    assert run.returncode == 0, run.stderr
    assert verify_file(path, trust_path=root, intermediates_path=pki.pem("inter.pem", pki.intermediate)).ok


# -- soc report verify -------------------------------------------------------------------------------
def test_soc_report_verify_with_ca_and_intermediates(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "soc.yml").write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")  # no reporting.certificate
    monkeypatch.setenv("SOC_CONFIG", str(tmp_path / "soc.yml"))
    path = tmp_path / "report.json"
    path.write_bytes(DATA)
    sign_file(path, pki.signer, pki.signer_key)
    root, inter = pki.pem("root.pem", pki.root), pki.pem("inter.pem", pki.intermediate)
    runner = CliRunner()
    ok = runner.invoke(app, ["report", "verify", str(path), "--ca", str(root), "--intermediates", str(inter)])
    assert ok.exit_code == 0 and "OK: signature valid" in ok.output, ok.output
    assert "Intermediate CA (TEST) -> Root CA (TEST)" in " ".join(ok.output.split())
    no_path = runner.invoke(app, ["report", "verify", str(path), "--ca", str(root)])
    assert no_path.exit_code == 1 and "wrong certificate" in no_path.output, no_path.output
    no_anchor = runner.invoke(app, ["report", "verify", str(path)])
    text = " ".join(no_anchor.output.split())
    assert no_anchor.exit_code == 2 and "no trust anchor" in text and "--ca" in text and "OK" not in text, text
