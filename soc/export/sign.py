"""Detached CMS/PKCS#7 signatures (``.p7s``, DER) over exported files, and their verification.

Signing uses ``cryptography``'s :class:`PKCS7SignatureBuilder` (SHA-256, detached, signer
certificate embedded, signed attributes incl. signing time). ``cryptography`` cannot verify
CMS, so :func:`verify` parses the structure with ``asn1crypto`` and checks it itself:

1. the file's SHA-256 equals the ``message-digest`` signed attribute (else: the file was changed);
2. the signature over the DER of the signed attributes verifies with the signer certificate's
   public key (else: the signature itself was tampered with or made by another key);
3. the signer certificate is valid now and was valid at the signing time (else: expired);
4. with a trust anchor (``--ca`` or ``reporting.certificate``): the signer certificate is that
   certificate, or is issued by it (else: wrong certificate).

The national centre can check the same with OpenSSL::

    openssl cms -verify -binary -inform DER -in report.json.p7s -content report.json \\
        -CAfile province-ca.pem -purpose any -out /dev/null
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512, "sha1": hashes.SHA1}


class SigningError(ValueError):
    pass


def load_signer(cert_path: Path, key_path: Path, password: bytes | None = None):  # type: ignore[no-untyped-def]
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except (OSError, ValueError) as error:
        raise SigningError(f"cannot read the signing certificate {cert_path}: {error} "
                           "(reporting.certificate: a PEM X.509 certificate)") from error
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=password)
    except (OSError, ValueError, TypeError) as error:
        raise SigningError(f"cannot read the private key {key_path}: {error} "
                           "(reporting.private_key: PEM; reporting.key_password_env names its password)") from error
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise SigningError(f"the key {key_path} does not belong to the certificate {cert_path}")
    return cert, key


def sign_bytes(data: bytes, cert: x509.Certificate, key) -> bytes:  # type: ignore[no-untyped-def]
    """A detached DER CMS signature over ``data``."""
    return (pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                               pkcs7.PKCS7Options.Binary]))


def sign_file(path: Path, cert: x509.Certificate, key) -> Path:  # type: ignore[no-untyped-def]
    sig = Path(str(path) + ".p7s")
    tmp = sig.with_name(sig.name + ".tmp")
    tmp.write_bytes(sign_bytes(Path(path).read_bytes(), cert, key))
    os.replace(tmp, sig)
    return sig


@dataclass
class Verification:
    ok: bool
    problems: list[str] = field(default_factory=list)
    signer: str | None = None
    signer_fingerprint: str | None = None
    signed_at: dt.datetime | None = None
    not_after: dt.datetime | None = None
    trusted: bool = False

    def summary(self) -> str:
        if self.ok:
            trust = "trusted certificate" if self.trusted else "certificate NOT checked against a trust anchor (give --ca)"
            return (f"OK: signature valid; signed by {self.signer} at {self.signed_at:%Y-%m-%d %H:%M:%S %Z}; "
                    f"{trust}; certificate valid until {self.not_after:%Y-%m-%d}")
        return "FAILED: " + "; ".join(self.problems)


def _verify_signature(public_key, signature: bytes, data: bytes, algo: str, hash_name: str) -> None:  # type: ignore[no-untyped-def]
    h = HASHES[hash_name]()
    if isinstance(public_key, rsa.RSAPublicKey):
        if algo == "rsassa_pss":
            public_key.verify(signature, data, padding.PSS(padding.MGF1(h), padding.PSS.AUTO), h)
        else:
            public_key.verify(signature, data, padding.PKCS1v15(), h)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(h))
    else:
        public_key.verify(signature, data)  # Ed25519 / Ed448


def verify_bytes(data: bytes, signature: bytes, trust: x509.Certificate | None = None,
                 now: dt.datetime | None = None) -> Verification:
    now = now or dt.datetime.now(dt.UTC)
    result = Verification(ok=False)
    try:
        info = cms.ContentInfo.load(signature)
        if info["content_type"].native != "signed_data":
            result.problems.append("the .p7s is not a CMS SignedData structure")
            return result
        signed = info["content"]
        signer_info = signed["signer_infos"][0]
        sid = signer_info["sid"]
        certs = [c.chosen for c in signed["certificates"] if c.name == "certificate"]
    except (ValueError, TypeError, KeyError, IndexError) as error:
        result.problems.append(f"the signature file is not valid DER CMS: {error}")
        return result
    signer_cert = None
    for cert in certs:
        if sid.name == "issuer_and_serial_number" and \
                cert.issuer == sid.chosen["issuer"] and cert.serial_number == sid.chosen["serial_number"].native:
            signer_cert = cert
        elif sid.name == "subject_key_identifier" and cert.key_identifier == sid.chosen.native:
            signer_cert = cert
    if signer_cert is None:
        result.problems.append("the signer's certificate is not inside the signature")
        return result
    cert = x509.load_der_x509_certificate(signer_cert.dump())
    result.signer = cert.subject.rfc4514_string()
    result.signer_fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    result.not_after = cert.not_valid_after_utc
    hash_name = signer_info["digest_algorithm"]["algorithm"].native
    if hash_name not in HASHES:
        result.problems.append(f"unsupported digest algorithm {hash_name}")
        return result
    attrs = signer_info["signed_attrs"]
    digest = None
    for attr in attrs:
        name = attr["type"].native
        if name == "message_digest":
            digest = attr["values"][0].native
        elif name == "signing_time":
            result.signed_at = attr["values"][0].native
    actual = hashlib.new(hash_name, data).digest()
    if digest is None:
        result.problems.append("the signature has no message-digest attribute")
    elif digest != actual:
        result.problems.append("the file does not match the signature: it was changed after signing "
                               "(message digest differs)")
    signed_attrs = attrs.dump()
    signed_attrs = b"\x31" + signed_attrs[1:]  # [0] IMPLICIT -> SET OF, as it was signed
    algo = signer_info["signature_algorithm"].signature_algo
    try:
        _verify_signature(cert.public_key(), signer_info["signature"].native, signed_attrs, algo, hash_name)
    except InvalidSignature:
        result.problems.append("the signature value does not verify with the embedded certificate's key "
                               "(the signature was tampered with)")
    except (ValueError, TypeError) as error:
        result.problems.append(f"cannot check the signature value: {error}")
    when = result.signed_at or now
    if cert.not_valid_after_utc < now:
        result.problems.append(f"the signer certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > when or cert.not_valid_after_utc < when:
        result.problems.append("the signer certificate was not valid at the signing time "
                               f"({when:%Y-%m-%d %H:%M} UTC; valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                               f"{cert.not_valid_after_utc:%Y-%m-%d})")
    if trust is not None:
        if cert.fingerprint(hashes.SHA256()) == trust.fingerprint(hashes.SHA256()):
            result.trusted = True
        else:
            try:
                cert.verify_directly_issued_by(trust)
                result.trusted = True
            except (ValueError, TypeError, InvalidSignature):
                result.problems.append(
                    f"wrong certificate: the signer {result.signer} is neither the trusted certificate "
                    f"{trust.subject.rfc4514_string()} nor issued by it")
    result.ok = not result.problems
    return result


def verify_file(path: Path, sig: Path | None = None, trust_path: Path | None = None,
                now: dt.datetime | None = None) -> Verification:
    sig = sig or Path(str(path) + ".p7s")
    for p, what in ((path, "file"), (sig, "signature")):
        if not Path(p).is_file():
            return Verification(ok=False, problems=[f"no {what} at {p}"])
    trust = None
    if trust_path is not None:
        try:
            trust = x509.load_pem_x509_certificate(Path(trust_path).read_bytes())
        except (OSError, ValueError) as error:
            return Verification(ok=False, problems=[f"cannot read the trusted certificate {trust_path}: {error}"])
    return verify_bytes(Path(path).read_bytes(), Path(sig).read_bytes(), trust, now)


def keygen(cert_path: Path, key_path: Path, common_name: str, organization: str | None = None,
           days: int = 365, not_before: dt.datetime | None = None,
           issuer: tuple[x509.Certificate, object] | None = None) -> x509.Certificate:
    """A key pair and a certificate for tests and development: self-signed, or issued by
    ``issuer`` (certificate, key). Never use it for real reports."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    name = x509.Name(attrs)
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            key_cert_sign=issuer is None, crl_sign=issuer is None,
                                            encipher_only=False, decipher_only=False), critical=True))
    cert = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    Path(key_path).parent.mkdir(parents=True, exist_ok=True)
    Path(cert_path).parent.mkdir(parents=True, exist_ok=True)
    Path(key_path).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert
