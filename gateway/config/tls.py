"""``services.<name>.tls``: how the gateway speaks TLS to a service's https:// upstreams.

Every https call of the service uses it: the proxy, aggregate calls, the
OpenAPI fetch, WebSocket handshakes. The files are read when the config is
loaded (a missing or unreadable one is a config error with its key path) and
again by every worker the config starts, so a reload picks up renewed
certificates.
"""

from __future__ import annotations

import ssl

from pydantic import Field, field_validator, model_validator

from .types import Section, fail


def _readable(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError as exc:
        raise fail(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in text:
        raise fail(f"{path!r} is not PEM (expected {what} between -----BEGIN and -----END lines)")
    return path


class TlsConfig(Section):
    """CA bundle, client certificate (mutual TLS) and the name to verify."""

    ca_file: str | None = Field(None, description="PEM bundle of the CAs to trust; default: "
                                "the system's")
    cert_file: str | None = Field(None, description="PEM client certificate (mutual TLS), with "
                                  "key_file")
    key_file: str | None = Field(None, description="PEM private key of cert_file")
    server_name: str | None = Field(None, min_length=1, description="the name to verify (and "
                                    "send as SNI), for a URL that has an address")
    verify: bool = Field(True, description="verify the upstream's certificate; false is "
                         "allowed, and `gateway check` warns")

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, path: str | None) -> str | None:
        path = _readable(path, "certificates")
        if path is not None:
            try:
                ssl.create_default_context(cafile=path)
            except ssl.SSLError as exc:
                raise fail(f"{path!r} holds no certificate TLS can use ({exc.reason})") from None
        return path

    @field_validator("cert_file")
    @classmethod
    def _cert_file(cls, path: str | None) -> str | None:
        return _readable(path, "a certificate")

    @field_validator("key_file")
    @classmethod
    def _key_file(cls, path: str | None) -> str | None:
        return _readable(path, "a private key")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise fail("cert_file and key_file go together: set both for mutual TLS, or neither")
        if self.cert_file is not None:
            try:
                ssl.create_default_context().load_cert_chain(self.cert_file, self.key_file)
            except ssl.SSLError as exc:
                raise fail(f"key_file does not go with cert_file ({exc.reason})") from None
        return self

    def pool_options(self) -> dict:
        """Keyword arguments for urllib3's HTTPS connection pool."""
        options: dict = {"cert_reqs": "CERT_REQUIRED" if self.verify else "CERT_NONE"}
        if self.ca_file is not None:
            options["ca_certs"] = self.ca_file
        if self.cert_file is not None:
            options["cert_file"], options["key_file"] = self.cert_file, self.key_file
        if self.server_name is not None:
            options["server_hostname"] = self.server_name
            options["assert_hostname"] = self.server_name
        if not self.verify:
            options["assert_hostname"] = False
        return options
