"""
tests/e2e/tcpproxy.py - a TCP relay on a free loopback port that a test can
cut and heal, to take one process off the network of another without root
(e.g. one router off ZooKeeper while its peers keep it).

  p = TcpProxy(target_port)     # listening on p.port, relaying at once
  p.cut()                       # open connections dropped, new ones refused
  p.heal()                      # accepting and relaying again
  p.close()

A cut connection is closed (the peer sees a reset or EOF), which is what a
partition looks like once TCP gives up; refused connects look like a host
whose port is closed.
"""

import socket
import threading

import cluster


class TcpProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = cluster.free_port()
        self.lock = threading.Lock()
        self.conns = []
        self.is_cut = False
        self.closed = False
        self.listener = None
        self._listen()

    def _listen(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls):
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target, timeout=2)
            except OSError:
                c.close()
                continue
            with self.lock:
                if self.is_cut or self.closed:
                    c.close()
                    u.close()
                    continue
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def _pump(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _drop_all(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut(self):
        with self.lock:
            self.is_cut = True
        if self.listener:
            self.listener.close()
            self.listener = None
        self._drop_all()

    def heal(self):
        with self.lock:
            self.is_cut = False
        if not self.listener:
            self._listen()

    def close(self):
        self.closed = True
        self.cut()
