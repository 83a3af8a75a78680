"""
tests/e2e/fakebackend.py - a scripted fake MySQL server, for the bytes a real
shard never sends on its own (STYLE.md: fakes only where the real server
cannot be made to misbehave). It accepts any login, then answers each
COM_QUERY through a Python function; every connection and what happened to
it is recorded.
"""

import socket
import struct
import threading

CAPS = (0x1 | 0x4 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x40000 | 0x80000)


def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xff]) + payload


def ok_packet(status=0x0002):
    return b"\x00\x00\x00" + struct.pack("<HH", status, 0)


def greeting(conn_id):
    scramble = b"abcdefgh" + b"ijklmnopqrst"
    return (b"\x0a" + b"5.5.5-10.11.0-fake\0" + struct.pack("<I", conn_id) + scramble[:8] +
            b"\0" + struct.pack("<H", CAPS & 0xffff) + b"\x2d" + struct.pack("<H", 2) +
            struct.pack("<H", CAPS >> 16) + bytes([21]) + b"\0" * 10 + scramble[8:] + b"\0" +
            b"mysql_native_password\0")


def lenenc(b):
    return bytes([len(b)]) + b if len(b) < 251 else b"\xfc" + struct.pack("<H", len(b)) + b


def coldef(name):
    return (lenenc(b"def") + lenenc(b"") + lenenc(b"") + lenenc(b"") + lenenc(name) +
            lenenc(name) + b"\x0c" + struct.pack("<HIBHB", 45, 64, 0xfd, 0, 0) + b"\0\0")


EOF_PKT = b"\xfe\x00\x00\x02\x00"

# The row a MariaDB 10.11 shard gives the router's server-settings check
# (protocol/srvcheck.h): version, sql_mode, lower_case_table_names, client
# and connection character sets, bad key columns (none), the first (NULL).
SETTINGS_REPLY = ([b"\x07"] + [coldef(b"c%d" % i) for i in range(7)] + [EOF_PKT] +
                  [lenenc(b"10.11.6-MariaDB-fake") + lenenc(b"STRICT_TRANS_TABLES") +
                   lenenc(b"0") + lenenc(b"utf8mb4") + lenenc(b"utf8mb4") + lenenc(b"0") +
                   b"\xfb"] + [EOF_PKT])


class FakeBackend:
    """Listens on 127.0.0.1:<port>. <on_query>(sql bytes) returns the list of
    reply payloads (sequence ids 1, 2, ...) for a COM_QUERY."""

    def __init__(self, on_query):
        self.on_query = on_query
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.events = []            # (connection number, what)
        self.lock = threading.Lock()
        self.n = 0
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def record(self, n, what):
        with self.lock:
            self.events.append((n, what))

    def seen(self, what):
        with self.lock:
            return [n for n, w in self.events if w == what]

    def close(self):
        self.stopping = True
        self.lsock.close()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            self.n += 1
            threading.Thread(target=self._serve, args=(s, self.n), daemon=True).start()

    @staticmethod
    def _read(s, buf, n):
        while len(buf) < n:
            b = s.recv(65536)
            if not b:
                raise EOFError
            buf += b
        return buf[:n], buf[n:]

    def _serve(self, s, n):
        buf = b""
        try:
            s.sendall(packet(0, greeting(n)))
            hdr, buf = self._read(s, buf, 4)
            _, buf = self._read(s, buf, int.from_bytes(hdr[:3], "little"))
            s.sendall(packet(hdr[3] + 1, ok_packet()))
            self.record(n, "login")
            while True:
                hdr, buf = self._read(s, buf, 4)
                body, buf = self._read(s, buf, int.from_bytes(hdr[:3], "little"))
                if body[:1] == b"\x01":
                    self.record(n, "quit")
                    return
                if body[:1] == b"\x03" and b"@@lower_case_table_names" in body:
                    replies = SETTINGS_REPLY       # the router's check after login
                elif body[:1] == b"\x03":
                    self.record(n, "query:" + body[1:].decode("utf-8", "replace"))
                    replies = self.on_query(body[1:])
                else:
                    replies = [ok_packet()]
                s.sendall(b"".join(packet(i + 1, p) for i, p in enumerate(replies)))
        except (EOFError, OSError):
            self.record(n, "eof")
        finally:
            s.close()
