"""TLS of our own listeners: HTTPS on the API and MM7 listeners, client certificates (mTLS)
required from MMSCs on the MM7 listener, certificates reloaded in place on SIGHUP.

Theory of operation: one ``ssl.SSLContext`` per listener lives as long as the listener.
``reload()`` first loads the files into a scratch context, so a bad or half-written file
leaves the running contexts untouched, then loads them into the live contexts: OpenSSL
copies a context's certificate into each new connection, so new connections present the
new certificate while open ones keep theirs. CAs re-read from ``mm7_client_ca_file`` are
added to the trusted set; taking one away needs a restart (OpenSSL cannot forget a CA).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import structlog

log = structlog.get_logger("gateway.ops.listener_tls")


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ListenerTls:
    """The server contexts of the API and MM7 listeners.

    Args:
        cert_file: PEM certificate (chain) both listeners present.
        key_file: its private key.
        client_ca_file: CAs whose client certificates the MM7 listener requires; None:
            no client certificate is asked for.

    Raises:
        ssl.SSLError, OSError: a file is missing, unreadable or not matching.
    """

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.client_ca_file = client_ca_file
        self.api = _server_context()
        self.mm7 = _server_context()
        if client_ca_file is not None:
            self.mm7.verify_mode = ssl.CERT_REQUIRED
        self._load_all()

    def reload(self) -> bool:
        """Read the certificate, key and client CAs again (SIGHUP); new connections use
        them. Unusable files are logged and change nothing; returns whether it worked."""
        try:
            self._load_all()
        except (ssl.SSLError, OSError) as exc:
            log.warning("TLS reload failed; keeping the previous certificates", error=str(exc))
            return False
        log.info("TLS certificates reloaded", cert_file=str(self.cert_file))
        return True

    def _load_all(self) -> None:
        self._load(_server_context())  # a scratch context first: all or nothing
        for context in (self.api, self.mm7):
            self._load(context)

    def _load(self, context: ssl.SSLContext) -> None:
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None and context is not self.api:
            context.load_verify_locations(cafile=self.client_ca_file)
