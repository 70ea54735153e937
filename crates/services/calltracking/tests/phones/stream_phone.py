#!/usr/bin/python3
"""A softphone that registers over a stream transport and keeps its connection open:
SIP over TLS (RFC 3261 section 26) or over WebSocket (RFC 7118, subprotocol "sip").

    stream_phone.py tls HOST PORT USER DOMAIN EXPIRES
    stream_phone.py ws  HOST PORT USER DOMAIN EXPIRES

It sends one REGISTER through the edge proxy at HOST:PORT, prints "registered <code>"
(or "refused <code>") on a line of its own once the final answer comes, then answers
OPTIONS with 200 and any other request with 480 until it is killed or the connection
closes (then it prints "closed" and exits 0). The TLS certificate is not checked (the
test's sg has a self-signed one). Used by tests/sg_loss.rs; Debian's python3 and
python3-websockets only.
"""
import asyncio
import ssl
import sys
import uuid

import websockets


def register(transport, local, user, domain, expires):
    tag, call_id, branch = uuid.uuid4().hex[:10], uuid.uuid4().hex, uuid.uuid4().hex[:12]
    via_t = {"tls": "TLS", "ws": "WS"}[transport]
    contact = f"sip:{user}@{local};transport={transport}"
    return (
        f"REGISTER sip:{domain} SIP/2.0\r\n"
        f"Via: SIP/2.0/{via_t} {local};branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@{domain}>;tag={tag}\r\n"
        f"To: <sip:{user}@{domain}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 REGISTER\r\n"
        f"Contact: <{contact}>\r\n"
        f"Expires: {expires}\r\n"
        "User-Agent: mware-test-stream-phone\r\n"
        "Content-Length: 0\r\n\r\n"
    )


def answer(request, code, reason):
    head = request.split("\r\n\r\n", 1)[0].split("\r\n")
    keep = [h for h in head[1:] if h.split(":", 1)[0].strip().lower() in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")]
    return f"SIP/2.0 {code} {reason}\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"


def handle(msg, send):
    """One SIP message; True once the REGISTER got its final answer."""
    first = msg.split("\r\n", 1)[0]
    if first.startswith("SIP/2.0 "):
        code = int(first.split(" ")[1])
        if code >= 200:
            print(("registered" if code < 300 else "refused") + f" {code}", flush=True)
        return
    method = first.split(" ", 1)[0]
    if method == "ACK":
        return
    send(answer(msg, 200, "OK") if method == "OPTIONS" else answer(msg, 480, "Temporarily Unavailable"))


def split_stream(buf):
    """Complete messages at the head of a TLS byte stream (by Content-Length)."""
    out = []
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l"):
                length = int(value.strip() or 0)
        if len(rest) < length:
            break
        out.append((head + b"\r\n\r\n" + rest[:length]).decode("utf-8", "replace"))
        buf = rest[length:]
    return out, buf


async def tls_phone(host, port, user, domain, expires):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    lhost, lport = writer.get_extra_info("sockname")[:2]

    def send(text):
        writer.write(text.encode())

    send(register("tls", f"{lhost}:{lport}", user, domain, expires))
    await writer.drain()
    buf = b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        msgs, buf = split_stream(buf + data)
        for m in msgs:
            handle(m, send)
        await writer.drain()


async def ws_phone(host, port, user, domain, expires):
    async with websockets.connect(f"ws://{host}:{port}/", subprotocols=["sip"]) as ws:
        local = f"{uuid.uuid4().hex[:12]}.invalid"
        pending = []
        await ws.send(register("ws", local, user, domain, expires))
        try:
            async for m in ws:
                handle(m if isinstance(m, str) else m.decode(), pending.append)
                while pending:
                    await ws.send(pending.pop(0))
        except websockets.ConnectionClosed:
            pass


def main():
    transport, host, port, user, domain, expires = sys.argv[1:7]
    run = {"tls": tls_phone, "ws": ws_phone}[transport]
    try:
        asyncio.run(run(host, int(port), user, domain, int(expires)))
    except (ConnectionError, OSError) as e:
        print(f"closed: {e}", flush=True)
        return
    print("closed", flush=True)


if __name__ == "__main__":
    main()
