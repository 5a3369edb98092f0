"""Key material the security tests make for themselves: an X.509 CA with server and client
certificates (``cryptography``), NKey users, and a decentralized-auth chain of operator,
account and user JWTs in a ``.creds`` file (``nkeys``).

Nothing here touches the network; everything is written under a directory the caller owns.
The JWTs follow nats-io/jwt v2 (``alg: ed25519-nkey``): ``base64url(header).base64url(claims)``
signed with the issuer's NKey, which is what ``nats-server`` verifies with ``resolver: MEMORY``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys  # type: ignore[import-untyped]  # no type information shipped
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "JwtChain",
    "NkeyUser",
    "Pki",
    "make_jwt_chain",
    "make_nkey_user",
    "make_pki",
    "nats_conf_string",
]


def nats_conf_string(value: str) -> str:
    """A nats-server config string literal (its parser accepts JSON quoting)."""
    return json.dumps(value)


# -- X.509 ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Path  # the CA the server's certificate chains to
    server_cert: Path
    server_key: Path
    client_cert: Path  # signed by ``ca``, for mutual TLS
    client_key: Path
    other_ca: Path  # an unrelated CA: a client trusting only this must refuse the server

    def server_tls_block(self, *, verify: bool = False, handshake_first: bool = False) -> str:
        """A ``tls {}`` block for ``nats_server_factory(extra_config=...)``."""
        lines = [
            "tls {",
            f"  cert_file: {nats_conf_string(str(self.server_cert))}",
            f"  key_file: {nats_conf_string(str(self.server_key))}",
            "  timeout: 2",
        ]
        if verify:
            lines += [f"  ca_file: {nats_conf_string(str(self.ca))}", "  verify: true"]
        if handshake_first:
            lines.append("  handshake_first: true")
        lines.append("}")
        return "\n".join(lines)


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256: fast to generate, accepted by nats-server (Go crypto/tls) and Python's ssl.
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        # Clients verify the host they dialled: the tests always dial 127.0.0.1.
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca("ajc-gitops test CA")
    other, _ = _ca("ajc-gitops unrelated CA")
    server, server_key = _leaf("ajc-gitops test server", ca, ca_key, server=True)
    client, client_key = _leaf("ajc-gitops test client", ca, ca_key, server=False)
    pki = Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        other_ca=directory / "other-ca.pem",
    )
    _write_cert(pki.ca, ca)
    _write_cert(pki.other_ca, other)
    _write_cert(pki.server_cert, server)
    _write_key(pki.server_key, server_key)
    _write_cert(pki.client_cert, client)
    _write_key(pki.client_key, client_key)
    return pki


# -- NKeys and JWTs -----------------------------------------------------------------------


def _new_nkey(prefix: int) -> nkeys.KeyPair:
    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


def _public(kp: nkeys.KeyPair) -> str:
    return bytes(kp.public_key).decode()


def _seed(kp: nkeys.KeyPair) -> str:
    return bytes(kp.seed).decode()


@dataclass(frozen=True, slots=True)
class NkeyUser:
    public_key: str  # goes into the server's authorization block
    seed_file: Path  # what --nkey points at


def make_nkey_user(path: Path) -> NkeyUser:
    kp = _new_nkey(nkeys.PREFIX_BYTE_USER)
    path.write_text(_seed(kp) + "\n")
    path.chmod(0o600)
    return NkeyUser(_public(kp), path)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(issuer: nkeys.KeyPair, subject: str, name: str, nats: dict[str, Any]) -> str:
    """Encode and sign a nats-io/jwt v2 claim set."""
    claims: dict[str, Any] = {
        "iat": int(time.time()) - 60,
        "iss": _public(issuer),
        "name": name,
        "sub": subject,
        "nats": {**nats, "version": 2},
    }
    # jwt v2 sets jti to a hash of the claims; the server only needs it to be present.
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims).encode()).digest()).decode().rstrip("=")
    header = _b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64url(json.dumps(claims).encode())
    signature = issuer.sign(f"{header}.{body}".encode())
    return f"{header}.{body}.{_b64url(signature)}"


_UNLIMITED = {"subs": -1, "data": -1, "payload": -1}
_ACCOUNT_LIMITS = {
    **_UNLIMITED,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}
# JetStream is on for an account exactly when its JWT grants storage (nats-io/jwt JetStreamLimits).
_JETSTREAM_LIMITS = {
    "mem_storage": -1,
    "disk_storage": -1,
    "streams": -1,
    "consumer": -1,
    "max_ack_pending": -1,
    "mem_max_stream_bytes": -1,
    "disk_max_stream_bytes": -1,
}


def _creds(user_jwt: str, seed: str) -> str:
    # The layout `nsc generate creds` writes and nats.go/nats.py parse.
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


@dataclass(frozen=True, slots=True)
class JwtChain:
    server_config: str  # operator, system account, resolver: MEMORY with the accounts preloaded
    creds: Path  # a user of the JetStream-enabled account APP
    stranger_creds: Path  # a well-formed user of an account the server has never heard of
    user_seed: str  # the secret inside ``creds``, for the redaction tests


def make_jwt_chain(directory: Path) -> JwtChain:
    directory.mkdir(parents=True, exist_ok=True)
    operator = _new_nkey(nkeys.PREFIX_BYTE_OPERATOR)
    system = _new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    app = _new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    stranger_account = _new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    user = _new_nkey(nkeys.PREFIX_BYTE_USER)
    stranger = _new_nkey(nkeys.PREFIX_BYTE_USER)

    operator_jwt = _jwt(operator, _public(operator), "ajc-test-operator", {"type": "operator"})
    system_jwt = _jwt(operator, _public(system), "SYS", {"type": "account", "limits": _ACCOUNT_LIMITS})
    app_jwt = _jwt(
        operator,
        _public(app),
        "APP",
        {"type": "account", "limits": {**_ACCOUNT_LIMITS, **_JETSTREAM_LIMITS}},
    )
    user_claims = {"type": "user", "pub": {}, "sub": {}, **_UNLIMITED}
    user_jwt = _jwt(app, _public(user), "ci", user_claims)
    stranger_jwt = _jwt(stranger_account, _public(stranger), "nobody", user_claims)

    creds = directory / "ci.creds"
    creds.write_text(_creds(user_jwt, _seed(user)))
    creds.chmod(0o600)
    stranger_creds = directory / "stranger.creds"
    stranger_creds.write_text(_creds(stranger_jwt, _seed(stranger)))
    stranger_creds.chmod(0o600)

    q = nats_conf_string
    server_config = "\n".join(
        [
            f"operator: {q(operator_jwt)}",
            f"system_account: {q(_public(system))}",
            "resolver: MEMORY",
            "resolver_preload: {",
            f"  {q(_public(system))}: {q(system_jwt)}",
            f"  {q(_public(app))}: {q(app_jwt)}",
            "}",
        ]
    )
    return JwtChain(server_config, creds, stranger_creds, _seed(user))
