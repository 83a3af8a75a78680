"""
tests/e2e/rawclient.py - a minimal MySQL client over a raw socket, for the
bytes real drivers never send: truncated, oversize and malformed packets,
unknown commands, stalls.
"""

import hashlib
import socket
import struct


def native_token(scramble, password):
    if not password:
        return b""
    s1 = hashlib.sha1(password.encode()).digest()
    s2 = hashlib.sha1(s1).digest()
    h = hashlib.sha1(scramble + s2).digest()
    return bytes(a ^ b for a, b in zip(s1, h))


class RawClient:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def recv_exact(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError("connection closed after %d of %d bytes" % (len(self.buf), n))
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_packet(self):
        """(seq, payload) of the next packet, joining continuations."""
        payload = b""
        while True:
            hdr = self.recv_exact(4)
            n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
            seq = hdr[3]
            payload += self.recv_exact(n)
            if n < 0xffffff:
                return seq, payload

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_packet(self, payload, seq=0):
        out = b""
        while True:
            chunk, payload = payload[:0xffffff], payload[0xffffff:]
            out += struct.pack("<I", len(chunk))[:3] + bytes([seq & 0xff]) + chunk
            seq += 1
            if len(chunk) < 0xffffff:
                break
        self.sock.sendall(out)

    def greeting(self):
        seq, p = self.read_packet()
        assert p[0] == 10, p
        end = p.index(b"\0", 1)
        pos = end + 1 + 4
        s1 = p[pos:pos + 8]
        pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
        s2 = p[pos:pos + 12]
        return s1 + s2

    def login(self, user, password, database=None, plugin=b"mysql_native_password"):
        """Handshake; returns the server's final reply payload."""
        scramble = self.greeting()
        caps = 0x1 | 0x4 | 0x200 | 0x8000 | 0x80000 | 0x200000 | 0x2000
        if database:
            caps |= 0x8
        tok = native_token(scramble, password)
        p = struct.pack("<IIB23x", caps, 1 << 24, 45) + user.encode() + b"\0"
        p += bytes([len(tok)]) + tok
        if database:
            p += database.encode() + b"\0"
        p += plugin + b"\0"
        self.send_packet(p, seq=1)
        seq, r = self.read_packet()
        if r[0] == 0xfe:    # auth switch
            name_end = r.index(b"\0", 1)
            scramble = r[name_end + 1:name_end + 21]
            self.send_packet(native_token(scramble, password), seq=seq + 1)
            seq, r = self.read_packet()
        return r

    def command(self, cmd, body=b""):
        self.send_packet(bytes([cmd]) + body, seq=0)

    def query(self, sql):
        self.command(3, sql.encode() if isinstance(sql, str) else sql)

    def read_result(self):
        """Reads one text-protocol reply. Returns ('ok'|'err', payload) or
        ('rows', [row payloads])."""
        seq, p = self.read_packet()
        if p[0] == 0x00:
            return "ok", p
        if p[0] == 0xff:
            return "err", p
        ncols = p[0]
        for _ in range(ncols):
            self.read_packet()
        _, eof = self.read_packet()
        assert eof[0] == 0xfe
        rows = []
        while True:
            _, r = self.read_packet()
            if r[0] == 0xfe and len(r) < 9:
                return "rows", rows
            if r[0] == 0xff:
                return "err", r
            rows.append(r)


def err_of(payload):
    """(errno, message) of an ERR payload."""
    code = payload[1] | payload[2] << 8
    msg = payload[9:] if payload[3:4] == b"#" else payload[3:]
    return code, msg.decode("utf-8", "replace")
