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


# ---- binary protocol (prepared statements) ----

T_DOUBLE, T_LONGLONG, T_NULL, T_VAR_STRING, T_BLOB, T_LONG = 0x05, 0x08, 0x06, 0xfd, 0xfc, 0x03


def lenenc_bytes(b):
    n = len(b)
    if n < 251:
        return bytes([n]) + b
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n) + b
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3] + b
    return b"\xfe" + struct.pack("<Q", n) + b


def param(value):
    """(type, unsigned, bytes) for a Python value, as drivers bind it."""
    if value is None:
        return (T_NULL, 0, b"")
    if isinstance(value, float):
        return (T_DOUBLE, 0, struct.pack("<d", value))
    if isinstance(value, int):
        return (T_LONGLONG, 0, struct.pack("<q", value))
    if isinstance(value, bytes):
        return (T_BLOB, 0, lenenc_bytes(value))
    return (T_VAR_STRING, 0, lenenc_bytes(str(value).encode()))


def _prepare(self, sql):
    """COM_STMT_PREPARE; returns (stmt_id, n_params, n_columns) or raises
    RuntimeError(errno, message)."""
    self.command(0x16, sql.encode())
    _, p = self.read_packet()
    if p[0] == 0xff:
        raise RuntimeError(*err_of(p))
    stmt_id, ncols, nparams = struct.unpack("<IHH", p[1:9])
    for _ in range(nparams):
        self.read_packet()
    if nparams:
        self.read_packet()
    for _ in range(ncols):
        self.read_packet()
    if ncols:
        self.read_packet()
    return stmt_id, nparams, ncols


def _execute(self, stmt_id, values, send_types=True, flags=0, long_params=()):
    """COM_STMT_EXECUTE with <values> (Python values; see param()); params in
    <long_params> were sent with send_long_data and carry no bytes here."""
    ps = [param(v) for v in values]
    body = struct.pack("<IBI", stmt_id, flags, 1)
    if ps:
        nb = bytearray((len(ps) + 7) // 8)
        for i, (t, _, _) in enumerate(ps):
            if t == T_NULL:
                nb[i // 8] |= 1 << (i % 8)
        body += bytes(nb) + (b"\x01" if send_types else b"\x00")
        if send_types:
            body += b"".join(bytes([t, u]) for t, u, _ in ps)
        body += b"".join(v for i, (t, _, v) in enumerate(ps) if i not in long_params)
    self.command(0x17, body)


def _send_long_data(self, stmt_id, param_id, data):
    self.command(0x18, struct.pack("<IH", stmt_id, param_id) + data)


def _read_binary_result(self):
    """('ok', payload) / ('err', payload) / ('rows', [payloads], status)."""
    _, p = self.read_packet()
    if p[0] == 0x00:
        return "ok", p
    if p[0] == 0xff:
        return "err", p
    for _ in range(p[0]):
        self.read_packet()
    _, eof = self.read_packet()
    status = eof[3] | eof[4] << 8
    if status & 0x40:       # cursor opened: rows come with FETCH
        return "cursor", [], status
    rows = []
    while True:
        _, r = self.read_packet()
        if r[0] == 0xfe and len(r) < 9:
            return "rows", rows, r[3] | r[4] << 8
        if r[0] == 0xff:
            return "err", r
        rows.append(r)


def _fetch(self, stmt_id, n):
    self.command(0x1c, struct.pack("<II", stmt_id, n))
    rows = []
    while True:
        _, r = self.read_packet()
        if r[0] == 0xff:
            return "err", r
        if r[0] == 0xfe and len(r) < 9:
            return "rows", rows, r[3] | r[4] << 8
        rows.append(r)


RawClient.prepare = _prepare
RawClient.execute = _execute
RawClient.send_long_data = _send_long_data
RawClient.read_binary_result = _read_binary_result
RawClient.fetch = _fetch
