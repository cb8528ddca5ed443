"""Detached CMS/PKCS#7 signatures (``.p7s``, DER) over exported files, and their verification.

Signing uses ``cryptography``'s :class:`PKCS7SignatureBuilder` (SHA-256, detached, signer
certificate embedded, signed attributes incl. signing time). ``cryptography`` cannot verify
CMS, so :func:`verify_bytes` parses the structure with ``asn1crypto`` and checks it itself:

1. the digest algorithm is SHA-256 or stronger (SHA-1 and MD5 are refused);
2. the file's digest equals the ``message-digest`` signed attribute (else: the file was changed);
3. the signature over the DER of the signed attributes verifies with the signer certificate's
   public key (else: the signature itself was tampered with or made by another key);
4. a trust anchor is required (``--ca`` or ``reporting.certificate``): without one the result is
   never OK;
5. the chain from the signer certificate through intermediate CAs (embedded in the signature or
   given with ``--intermediates``) to the anchor validates at the signing time (signed attribute)
   with ``pyhanko-certvalidator`` (PKIX path validation: issuer signatures, CA flags and key
   usage, validity of every certificate at the signing time; SHA-1 signatures refused; revocation
   is not checked). A self-signed certificate given as the anchor is a chain of one;
6. no certificate of the chain has expired by now (a back-dated signing time does not revive it).

The national centre can check the same with OpenSSL::

    openssl cms -verify -binary -inform DER -in report.json.p7s -content report.json \\
        -CAfile province-ca.pem -purpose any -out /dev/null
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    ValidationError,
)

from soc.errors import SocError

HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
T = TypeVar("T")


class SigningError(SocError, ValueError):
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
                           "(reporting.private_key: PEM; reporting.key_password_file or key_password_env gives its password)") from error
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


WEAK_HASHES = frozenset({"md2", "md5", "sha1"})
"""Digest algorithms refused in a signature and in the certificate chain."""

NO_ANCHOR = ("no trust anchor: the signer's certificate cannot be checked; give --ca CA.pem (the "
             "province's CA certificate, or its own certificate when self-signed) or set "
             "reporting.certificate")


@dataclass
class Verification:
    """The outcome of :func:`verify_bytes`: ``ok`` only when every check passed, including the
    chain to a trust anchor; otherwise ``problems`` says what failed."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    signer: str | None = None
    signer_fingerprint: str | None = None
    signed_at: dt.datetime | None = None
    not_after: dt.datetime | None = None
    trusted: bool = False
    chain: list[str] = field(default_factory=list)  # subjects, signer first, trust anchor last

    def summary(self) -> str:
        if self.ok:
            signed_at = f"{self.signed_at:%Y-%m-%d %H:%M:%S %Z}" if self.signed_at else "an unknown time"
            chain = " -> ".join(_common_name(subject) for subject in self.chain)
            return (f"OK: signature valid; signed by {self.signer} at {signed_at}; certificate chain "
                    f"{chain} trusted; certificate valid until {self.not_after:%Y-%m-%d}")
        return "FAILED: " + "; ".join(self.problems)


def _common_name(subject: str) -> str:
    """The CN of an RFC 4514 subject string (the whole string when it has none)."""
    try:
        names = x509.Name.from_rfc4514_string(subject).get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return subject
    return str(names[0].value) if names else subject


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


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _subject(cert: asn1_x509.Certificate) -> str:
    return x509.load_der_x509_certificate(cert.dump()).subject.rfc4514_string()


def _dates(cert: x509.Certificate, what: str, when: dt.datetime, now: dt.datetime) -> list[str]:
    """A certificate must have been valid at the signing time ``when`` and must not have expired
    by ``now`` (a signing time set in the past does not revive an expired certificate)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    problems = []
    if end < now:
        problems.append(f"{what} expired on {end:%Y-%m-%d %H:%M} UTC")
    if start > when or end < when:
        problems.append(f"{what} was not valid at the signing time ({when:%Y-%m-%d %H:%M} UTC; "
                        f"valid {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC)")
    return problems


def _chain(signer: asn1_x509.Certificate, others: Sequence[asn1_x509.Certificate],
           anchors: Sequence[x509.Certificate], when: dt.datetime,
           result: Verification) -> list[asn1_x509.Certificate] | None:
    """Build and validate the path signer -> intermediates (``others``) -> one of ``anchors`` at
    the signing time ``when`` with pyhanko-certvalidator (PKIX: signatures, CA flags, key usage,
    validity; MD5/SHA-1 refused; revocation not checked). Returns the path, signer first, or
    ``None`` after adding the reason to ``result.problems``."""
    context = ValidationContext(trust_roots=[_asn1(a) for a in anchors], other_certs=list(others), moment=when,
                                weak_hash_algos=WEAK_HASHES)
    try:
        path = _run(CertificateValidator(signer, validation_context=context).async_validate_path())
    except (PathBuildingError, InvalidCertificateError):  # no path; or self-signed, not an anchor
        names = ", ".join(a.subject.rfc4514_string() for a in anchors)
        result.problems.append(
            f"wrong certificate: the signer {result.signer} does not chain to the trusted certificate ({names}); "
            "if it is issued through intermediate CAs not embedded in the signature, give them with --intermediates")
        return None
    except DisallowedAlgorithmError as error:
        result.problems.append(f"the certificate chain uses a weak algorithm, which is refused (SHA-1 and MD5 "
                               f"are not accepted): {error}")
        return None
    except (ExpiredError, NotYetValidError) as error:
        result.problems.append(f"the certificate chain was not valid at the signing time: {error}")
        return None
    except (ValidationError, ValueError, TypeError) as error:
        result.problems.append(f"the signer's certificate chain does not validate up to the trusted "
                               f"certificate: {error}")
        return None
    return list(reversed(list(path.iter_certs(include_root=True))))


def verify_bytes(data: bytes, signature: bytes,
                 trust: x509.Certificate | Sequence[x509.Certificate] | None = None,
                 now: dt.datetime | None = None,
                 intermediates: Sequence[x509.Certificate] = ()) -> Verification:
    """Verify a detached CMS signature over ``data``.

    ``trust``: the trust anchor(s): a CA certificate, or the signer's own (self-signed or pinned)
    certificate; without one the result is never OK. ``intermediates``: CA certificates to build
    the chain with, besides those embedded in the signature. ``now``: the time of the check
    (default: the current time); the chain is validated at the signing time (signed attribute)."""
    now = now or dt.datetime.now(dt.UTC)
    anchors = [trust] if isinstance(trust, x509.Certificate) else list(trust or [])
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
    algo = signer_info["signature_algorithm"].signature_algo
    try:
        signature_hash = signer_info["signature_algorithm"].hash_algo if algo not in ("ed25519", "ed448") else None
    except ValueError:  # e.g. plain rsassa_pkcs1v15 / ecdsa: the digest algorithm applies
        signature_hash = None
    for name in (hash_name, signature_hash):
        if name in WEAK_HASHES:
            result.problems.append(f"the signature uses the weak digest algorithm {name.upper()}, which is refused "
                                   "(sign with SHA-256 or stronger)")
            return result
    if hash_name not in HASHES:
        result.problems.append(f"unsupported digest algorithm {hash_name}")
        return result
    if signature_hash not in (None, hash_name):
        result.problems.append(f"the signature algorithm's digest ({signature_hash}) differs from the "
                               f"digest algorithm ({hash_name})")
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
    try:
        _verify_signature(cert.public_key(), signer_info["signature"].native, signed_attrs, algo, hash_name)
    except InvalidSignature:
        result.problems.append("the signature value does not verify with the embedded certificate's key "
                               "(the signature was tampered with)")
    except (ValueError, TypeError) as error:
        result.problems.append(f"cannot check the signature value: {error}")
    usage = _key_usage(cert)
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        result.problems.append("the signer certificate's key usage allows neither digital signature nor "
                               "non-repudiation")
    when = result.signed_at or now
    result.problems.extend(_dates(cert, "the signer certificate", when, now))
    if not anchors:
        result.problems.append(NO_ANCHOR)
    elif cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:  # else the chain would repeat it
        others = [c for c in certs if c is not signer_cert] + [_asn1(c) for c in intermediates]
        path = _chain(signer_cert, others, anchors, when, result)
        if path is not None:
            result.chain = [_subject(c) for c in path]
            ca_dates = [p for c in path[1:] for p in _dates(
                x509.load_der_x509_certificate(c.dump()), f"the CA certificate {_subject(c)}", when, now)]
            result.problems.extend(ca_dates)
            result.trusted = not ca_dates
    result.ok = not result.problems
    return result


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def load_certificates(path: Path) -> list[x509.Certificate]:
    """All certificates of a PEM file (or one DER certificate). Raises ``ValueError``/``OSError``."""
    raw = Path(path).read_bytes()
    if b"-----BEGIN" in raw:
        return x509.load_pem_x509_certificates(raw)
    return [x509.load_der_x509_certificate(raw)]


def verify_file(path: Path, sig: Path | None = None, trust_path: Path | None = None,
                now: dt.datetime | None = None, intermediates_path: Path | None = None) -> Verification:
    """:func:`verify_bytes` on files: ``sig`` defaults to ``FILE.p7s``; ``trust_path`` holds the
    trust anchor(s) and ``intermediates_path`` extra CA certificates (PEM, one or more)."""
    sig = sig or Path(str(path) + ".p7s")
    for p, what in ((path, "file"), (sig, "signature")):
        if not Path(p).is_file():
            return Verification(ok=False, problems=[f"no {what} at {p}"])
    loaded: dict[str, list[x509.Certificate]] = {"trust": [], "intermediates": []}
    for key, source, what in (("trust", trust_path, "trusted certificate"),
                              ("intermediates", intermediates_path, "intermediate certificates")):
        if source is None:
            continue
        try:
            loaded[key] = load_certificates(source)
        except (OSError, ValueError) as error:
            return Verification(ok=False, problems=[f"cannot read the {what} {source}: {error}"])
    return verify_bytes(Path(path).read_bytes(), Path(sig).read_bytes(), loaded["trust"], now,
                        loaded["intermediates"])


def keygen(cert_path: Path, key_path: Path, common_name: str, organization: str | None = None,
           days: int = 365, not_before: dt.datetime | None = None,
           issuer: tuple[x509.Certificate, object] | None = None, ca: bool | None = None) -> x509.Certificate:
    """A key pair and a certificate for tests and development: self-signed, or issued by
    ``issuer`` (certificate, key). ``ca`` (default: only when self-signed) makes it a CA that
    can issue certificates (e.g. an intermediate). Never use it for real reports."""
    is_ca = issuer is None if ca is None else ca
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
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            key_cert_sign=is_ca, crl_sign=is_ca,
                                            encipher_only=False, decipher_only=False), critical=True))
    cert = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    Path(key_path).parent.mkdir(parents=True, exist_ok=True)
    Path(cert_path).parent.mkdir(parents=True, exist_ok=True)
    Path(key_path).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert
