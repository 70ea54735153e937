#!/usr/bin/python3
"""An SMTP sink for the users tests, on Debian's aiosmtpd: every accepted message is
written as one .eml file into a folder (atomically: a temp name, then renamed); a
copy of the body with its transfer encoding undone is appended after a marker; a
recipient whose local part starts with "bounce" is refused with 550 (a permanent
failure). Usage: smtp_sink.py PORT FOLDER. Runs until killed."""
import email
import email.policy
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("bounce"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        tmp = os.path.join(self.folder, f".tmp-{self.n}")
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.content)
            # The text as a reader sees it (transfer encoding undone), for the tests.
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            f.write(b"\r\n--decoded body--\r\n" + msg.get_body().get_content().encode())
        os.rename(tmp, os.path.join(self.folder, f"{time.time_ns()}-{self.n}.eml"))
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    c = Controller(Sink(folder), hostname="127.0.0.1", port=port)
    c.start()
    print(f"smtp sink on 127.0.0.1:{port} writing into {folder}", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    c.stop()


if __name__ == "__main__":
    main()
