"""
tests/e2e/wirefuzz.py - a live-socket protocol fuzzer for the router.

Throws at a running router what real drivers never send: handshakes cut at
every byte, capability combinations, every command byte with odd payloads,
length-encoded values at every boundary, prepared-statement parameters that
lie about their size, wrong sequence ids and broken framing; and, through a
scripted fake shard (fakebackend.py), replies no real server sends. Each case
uses its own connection and only checks that the router answers or closes;
the judge is the caller's control connection (it must keep working) and the
sanitizer build's report when the router stops.

  python3 tests/e2e/wirefuzz.py HOST:PORT [SECONDS] [SEED]   (against any router)
  test_wirefuzz.py runs it briefly in the e2e suite.
"""

import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawclient import RawClient, lenenc_bytes, native_token   # noqa: E402

USER, PASSWORD, DB = "app", "app-pw", "app"
CAPS = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000 | 0x200000


def packet(payload, seq=0):
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xff]) + payload


QUIT = packet(b"\x01")


def drain(sock, timeout=0.2):
    """Reads until EOF or <timeout> of silence; returns the bytes."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError, OSError):
        pass
    return out


def handshake_response(scramble, caps=CAPS, user=USER, password=PASSWORD, db=DB,
                       plugin=b"mysql_native_password", charset=45):
    tok = native_token(scramble, password)
    p = struct.pack("<IIB23x", caps, 1 << 24, charset) + user.encode() + b"\0"
    if caps & 0x200000:
        p += lenenc_bytes(tok)
    elif caps & 0x8000:
        p += bytes([len(tok)]) + tok
    else:
        p += tok + b"\0"
    if caps & 0x8:
        p += db.encode() + b"\0"
    if caps & 0x80000:
        p += plugin + b"\0"
    return p


class Fuzzer:
    def __init__(self, port, seed, host="127.0.0.1", key_sql=None):
        self.port, self.host = port, host
        self.rnd = random.Random(seed)
        self.cases = 0
        self.key_sql = key_sql or "SELECT * FROM accounts WHERE userid = 1"

    def connect(self):
        c = RawClient(self.port, self.host, timeout=5)
        return c

    def logged_in(self):
        c = self.connect()
        r = c.login(USER, PASSWORD, DB)
        if r[:1] != b"\x00":
            # Not caught by case(): a fuzzer that cannot log in tests nothing.
            raise RuntimeError("fuzzer login refused: %r" % r[:60])
        return c

    def case(self, fn):
        self.cases += 1
        c = None
        try:
            c = fn()
        except (OSError, EOFError, AssertionError, ValueError, IndexError):
            pass        # the router may close on us; that is allowed
        finally:
            if c is not None:
                try:
                    drain(c.sock, 0.05)
                    c.close()
                except OSError:
                    pass

    # -- the handshake

    def truncated_handshakes(self):
        probe = self.connect()
        scramble = probe.greeting()
        probe.close()
        full = handshake_response(scramble)
        for cut in range(len(full) + 1):
            def send_cut(cut=cut, honest=True):
                c = self.connect()
                c.greeting()
                body = full[:cut]
                # The header tells the cut length, or still the full one.
                hdr_len = len(body) if honest else len(full)
                c.send_raw(struct.pack("<I", hdr_len)[:3] + b"\x01" + body)
                c.sock.shutdown(socket.SHUT_WR)
                drain(c.sock, 2)
                return c
            self.case(send_cut)
            if cut % 3 == 0:
                self.case(lambda cut=cut: send_cut(cut, False))

    def capability_combinations(self, n):
        for _ in range(n):
            def one():
                c = self.connect()
                scramble = c.greeting()
                caps = self.rnd.getrandbits(32) | (0x200 if self.rnd.random() < 0.8 else 0)
                c.send_packet(handshake_response(scramble, caps=caps),
                              seq=self.rnd.choice([1, 1, 1, 0, 2, 255]))
                c.send_raw(QUIT)
                drain(c.sock, 1)
                return c
            self.case(one)

    # -- commands

    def every_command(self):
        for cmd in range(256):
            for size in (0, 5, self.rnd.randrange(0, 300)):
                def one(cmd=cmd, size=size):
                    c = self.logged_in()
                    body = bytes(self.rnd.getrandbits(8) for _ in range(size))
                    c.send_packet(bytes([cmd]) + body, seq=self.rnd.choice([0, 0, 0, 1, 7, 255]))
                    c.send_raw(QUIT)        # the router closes after its answer
                    drain(c.sock, 2)
                    return c
                self.case(one)

    def lenenc_boundaries(self):
        """EXECUTE parameters whose length-encoded sizes sit on every
        boundary, with the bytes present, short, or absent."""
        sizes = [0, 1, 250, 251, 252, 0xffff, 0x10000, 0xffffff, 0x1000000, 1 << 40]
        for n in sizes:
            for have in ("all", "short", "none"):
                for enc in ("lenenc", "fb", "ff", "fe"):
                    def one(n=n, have=have, enc=enc):
                        c = self.logged_in()
                        sid, np, _ = c.prepare(
                            "SELECT ? FROM accounts WHERE userid = ?")
                        if enc == "lenenc":
                            if n < 251:
                                head = bytes([n])
                            elif n < 1 << 16:
                                head = b"\xfc" + struct.pack("<H", n)
                            elif n < 1 << 24:
                                head = b"\xfd" + struct.pack("<I", n)[:3]
                            else:
                                head = b"\xfe" + struct.pack("<Q", n)
                        else:
                            head = bytes.fromhex(enc) + struct.pack("<Q", n)[:self.rnd.randrange(0, 9)]
                        data = b"v" * min(n, 70000)
                        if have == "short":
                            data = data[:len(data) // 2]
                        elif have == "none":
                            data = b""
                        body = struct.pack("<IBI", sid, 0, 1) + b"\x00" + b"\x01"
                        body += bytes([0xfd, 0]) + bytes([0x08, 0])
                        body += head + data + struct.pack("<q", 1)
                        c.command(0x17, body)
                        c.send_raw(QUIT)
                        drain(c.sock, 2)
                        return c
                    self.case(one)

    def prepared_params(self, n):
        types = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
                 0x0f, 0x10, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff]
        for _ in range(n):
            def one():
                c = self.logged_in()
                sid, np, _ = c.prepare("SELECT ?, ? FROM accounts WHERE userid = ?")
                body = struct.pack("<IBI", sid, self.rnd.choice([0, 1, 2, 4, 0xff]), 1)
                body += bytes([self.rnd.getrandbits(3)]) + bytes([self.rnd.choice([0, 1, 2])])
                for _ in range(3):
                    body += bytes([self.rnd.choice(types), self.rnd.choice([0, 0x80])])
                body += bytes(self.rnd.getrandbits(8) for _ in range(self.rnd.randrange(0, 40)))
                if self.rnd.random() < 0.3:
                    c.send_long_data(sid, self.rnd.randrange(0, 5), b"L" * self.rnd.randrange(0, 300))
                c.command(0x17, body)
                if self.rnd.random() < 0.5:
                    c.command(0x17, body)        # types not sent again
                c.send_raw(QUIT)
                drain(c.sock, 2)
                return c
            self.case(one)

    # -- framing and sequence ids

    def framing(self):
        cases = [
            packet(b"\x03SELECT 1", seq=3),
            packet(b"\x0e", seq=200) + packet(b"\x0e", seq=0),
            b"\xff\xff\xff\x00" + b"\x03" + b"x" * 100,               # continuation never completed
            b"\xff\xff\xff\x00" + b"\x03" + b"y" * (0xffffff - 1) + packet(b"tail", seq=5),
            b"\x00\x00\x00\x00",                                       # empty command
            b"\x05\x00",                                                # header cut
            packet(b"\x16" + b"SELECT ? FROM accounts WHERE userid = 1")[:-3],
            packet(b"\x03" + self.key_sql.encode()) * 50,               # pipelined
        ]
        for raw in cases:
            def one(raw=raw):
                c = self.logged_in()
                c.send_raw(raw)
                if self.rnd.random() < 0.5:
                    c.sock.shutdown(socket.SHUT_WR)
                else:
                    c.send_raw(QUIT)
                drain(c.sock, 1)
                return c
            self.case(one)

    def backend_queries(self, sql_list):
        """Sends queries routed to the fake shard (its script misbehaves)."""
        for sql in sql_list:
            def one(sql=sql):
                c = self.logged_in()
                c.query(sql)
                c.command(0x0e)
                c.send_raw(QUIT)
                drain(c.sock, 2)
                return c
            self.case(one)

    def run(self, seconds):
        """Every deterministic family once, then random families until
        <seconds> have passed."""
        deadline = time.monotonic() + seconds
        self.truncated_handshakes()
        self.every_command()
        self.lenenc_boundaries()
        self.framing()
        while time.monotonic() < deadline:
            self.rnd.choice([lambda: self.capability_combinations(10),
                             lambda: self.prepared_params(10)])()
        return self.cases


def bad_replies(rnd):
    """Reply scripts for the fake shard: what a broken server might send."""
    def coldef(name=b"c"):
        return (lenenc_bytes(b"def") + lenenc_bytes(b"app") + lenenc_bytes(b"t") +
                lenenc_bytes(b"t") + lenenc_bytes(name) + lenenc_bytes(name) +
                b"\x0c" + struct.pack("<HIBHB", 45, 10, 0xfd, 0, 0) + b"\0\0")
    eof = b"\xfe\x00\x00\x02\x00"
    scripts = [
        [b"\xfb/etc/passwd"],
        [b"\x01", coldef()],                                  # result set cut short
        [b"\x01", coldef(), eof, b"\x03abc"],                  # rows never end
        [b"\x02", coldef(), coldef(), eof, b"\x03abc", eof, b"\x00\x00\x00\x02\x00\x00\x00"],
        [b"\xfd\xff\xff\xff"],                                 # absurd column count
        [b"\xff"],                                             # ERR without a body
        [b"\xff\x15\x04"],
        [b"\x00"],                                             # OK too short
        [b"\x00\x00\x00\x02\x00\x00\x00", b"\x00\x00\x00\x02\x00\x00\x00"],   # data after the end
        [b""],                                                 # empty packet
        [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 64)))],
        [b"\x01", coldef(), eof] + [b"\x03abc"] * 1000 + [eof],
    ]
    return scripts


if __name__ == "__main__":
    host, _, port = sys.argv[1].rpartition(":")
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else int(time.time())
    print("wirefuzz: seed=%d" % seed)
    n = Fuzzer(int(port), seed, host or "127.0.0.1").run(seconds)
    print("wirefuzz: %d cases" % n)
