"""A real SMTP server (aiosmtpd) for the email channel's tests.

Listens on 127.0.0.1 on a free port and prints one JSON line
{"listening": PORT, "ca_pem": PEM or null}, then one JSON line per mail it
accepts: the envelope, whether the session was TLS and authenticated, every
header as received, and the text and HTML parts as Python's email package
(a real mail reader's parser) reads them.

Recipients decide the answer, as a real server's mailboxes would:
gone@... is refused with 550 (mailbox unavailable), busy@... with 451
(try again later); every other address is taken.

--starttls   offer STARTTLS with a fresh self-signed certificate for
             127.0.0.1 (made with the openssl command) and require it
--auth U:P   require AUTH (PLAIN or LOGIN, over TLS only) with these
             credentials; wrong ones get 535
"""

import argparse
import asyncio
import email
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import warnings
from email import policy

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "gone":
            return "550 5.1.1 Mailbox unavailable"
        if local == "busy":
            return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        mail = email.message_from_bytes(raw, policy=policy.default)
        text = mail.get_body(preferencelist=("plain",))
        html = mail.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "headers": [[name, str(value)] for name, value in mail.raw_items()],
            "subject": str(mail.get("subject", "")),
            "message_id": str(mail.get("message-id", "")),
            "in_reply_to": str(mail.get("in-reply-to", "")),
            "references": str(mail.get("references", "")),
            "content_type": mail.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "defects": [str(d) for d in mail.defects],
        }
        print(json.dumps(record), flush=True)
        return "250 2.0.0 OK queued"


def self_signed(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", key, "-out", cert, "-days", "1",
            "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            # A server certificate, not a CA: TLS clients refuse a CA
            # certificate as the server's own.
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def authenticator(expected):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == expected
        )
        # handled=False: aiosmtpd answers 535 itself.
        return AuthResult(success=ok, handled=False)

    return check


async def main():
    # aiosmtpd warns about its own use of a deprecated session field.
    warnings.filterwarnings("ignore", message=".*login_data is deprecated.*")
    parser = argparse.ArgumentParser()
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--auth")
    args = parser.parse_args()

    tls_context = None
    ca_pem = None
    if args.starttls:
        directory = tempfile.mkdtemp(prefix="tributary-smtp-")
        cert, key = self_signed(directory)
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(cert, key)
        with open(cert) as f:
            ca_pem = f.read()
        shutil.rmtree(directory)
    auth = None
    if args.auth:
        user, _, password = args.auth.partition(":")
        auth = authenticator((user, password))

    handler = Recorder()

    def factory():
        return SMTP(
            handler,
            hostname="tributary-test-smtp",
            tls_context=tls_context,
            require_starttls=tls_context is not None,
            authenticator=auth,
            auth_required=auth is not None,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"listening": port, "ca_pem": ca_pem}), flush=True)
    # The test ends the server by closing stdin (or killing it).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
