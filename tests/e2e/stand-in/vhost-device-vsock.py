#!/usr/bin/env python3
"""A minimal stand-in for the daemon, used only to test the end-to-end TESTS (not the product).

It answers QEMU 7.2's vhost-user-vsock-pci on the same command line as the real daemon
(--guest-cid/--socket/--uds-path, --vm k=v,..., --config YAML), so the scenarios of
tests/Vsock.E2E.Tests can be run before the C# daemon exists, or when a failure needs telling apart
"the test is wrong" from "the daemon is wrong":

    VSOCK_DAEMON=tests/e2e/stand-in/vhost-device-vsock.py \
        dotnet test tests/Vsock.E2E.Tests --filter Category=E2E-Daemon

Deliberately small: one thread, split rings without EVENT_IDX, blocking vhost-user handling, the unix
socket backend only, no groups (every VM is a sibling of every other). It does what the tests expect of
the real daemon: CONNECT/OK, <uds>_<port> for guest connections, RST for refused connections, credit,
half-close both ways, dropping host connections when the VMM goes away and serving the next VMM.
Fault switches show that the tests can fail:
    STANDIN_NO_RST=1   no RST for a failed guest connect (the reference's behaviour: the guest times out)
    STANDIN_CORRUPT=1  flip one bit at offset 100000 of every host->guest stream
Needs python3 (not installed on every CI machine; the tests never start it by themselves).
"""
import array
import collections
import mmap
import os
import selectors
import socket
import struct
import sys

HDR = struct.Struct('<QQIIIHHIII')  # struct virtio_vsock_hdr, 44 bytes
OP_REQUEST, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE, OP_CREDIT_REQUEST = 1, 2, 3, 4, 5, 6, 7
SHUT_RCV, SHUT_SEND = 1, 2
HOST_CID = 2
TX_BUF = 65536          # buf_alloc we advertise: at most this much guest data waits for the host socket
RX, TX = 0, 1
NO_RST = bool(os.environ.get('STANDIN_NO_RST'))
CORRUPT = bool(os.environ.get('STANDIN_CORRUPT'))

sel = selectors.DefaultSelector()
devices = {}


def log(*args):
    print('stand-in:', *args, file=sys.stderr, flush=True)


class Region:
    def __init__(self, gpa, size, uva, offset, fd):
        self.gpa, self.size, self.uva, self.offset = gpa, size, uva, offset
        self.map = mmap.mmap(fd, size + offset, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)


class Memory:
    def __init__(self, regions):
        self.regions = regions

    def _locate(self, gpa, length):
        for r in self.regions:
            if r.gpa <= gpa and gpa + length <= r.gpa + r.size:
                return r, gpa - r.gpa + r.offset
        raise ValueError('guest address %#x+%d outside memory' % (gpa, length))

    def read(self, gpa, length):
        r, o = self._locate(gpa, length)
        return r.map[o:o + length]

    def write(self, gpa, data):
        r, o = self._locate(gpa, len(data))
        r.map[o:o + len(data)] = data

    def uva_to_gpa(self, uva):
        for r in self.regions:
            if r.uva <= uva < r.uva + r.size:
                return uva - r.uva + r.gpa
        raise ValueError('VMM address %#x outside memory' % uva)


class Ring:
    def __init__(self):
        self.num = self.desc = self.avail = self.used = self.last_avail = 0
        self.kick = self.call = None
        self.enabled = self.started = False

    def pop(self, mem):
        """Next available chain as (head, [(addr, len, writable)]), or None."""
        if struct.unpack('<H', mem.read(self.avail + 2, 2))[0] == self.last_avail:
            return None
        head = struct.unpack('<H', mem.read(self.avail + 4 + 2 * (self.last_avail % self.num), 2))[0]
        self.last_avail = (self.last_avail + 1) & 0xffff
        chain, i = [], head
        while True:
            addr, length, flags, nxt = struct.unpack('<QIHH', mem.read(self.desc + 16 * i, 16))
            chain.append((addr, length, bool(flags & 2)))
            if not flags & 1:
                return head, chain
            i = nxt

    def put(self, mem, head, length):
        idx = struct.unpack('<H', mem.read(self.used + 2, 2))[0]
        mem.write(self.used + 4 + 8 * (idx % self.num), struct.pack('<II', head, length))
        mem.write(self.used + 2, struct.pack('<H', (idx + 1) & 0xffff))

    def notify(self):
        if self.call is not None:
            os.write(self.call, struct.pack('<Q', 1))


class Connection:
    """One stream between a host unix socket and a guest port; key (local_port, guest_port)."""

    def __init__(self, dev, sock, local_port, guest_port, host_initiated):
        self.dev, self.sock, self.local_port, self.guest_port = dev, sock, local_port, guest_port
        self.connected = not host_initiated
        self.peer_buf_alloc = self.peer_fwd_cnt = self.rx_cnt = 0
        self.fwd_cnt = self.last_fwd_advertised = 0
        self.pending = bytearray()          # guest data not yet written to the host socket
        self.host_eof = self.host_write_shut = self.closed = False
        self.guest_shutdown = 0
        sock.setblocking(False)
        self.update_interest()

    def credit(self):
        return self.peer_buf_alloc - ((self.rx_cnt - self.peer_fwd_cnt) & 0xffffffff)

    def update_interest(self):
        if self.closed:
            return
        events = 0
        if self.connected and not self.host_eof and self.credit() > 0:
            events |= selectors.EVENT_READ
        if self.pending:
            events |= selectors.EVENT_WRITE
        registered = self.sock in sel.get_map()
        if not events:
            if registered:
                sel.unregister(self.sock)
        elif registered:
            sel.modify(self.sock, events, ('conn', self))
        else:
            sel.register(self.sock, events, ('conn', self))

    def send(self, op, payload=b'', flags=0):
        if op == OP_RW:
            self.rx_cnt += len(payload)
        else:
            self.last_fwd_advertised = self.fwd_cnt
        header = HDR.pack(HOST_CID, self.dev.cid, self.local_port, self.guest_port, len(payload), 1, op, flags,
                          TX_BUF, self.fwd_cnt)
        self.dev.deliver(header, payload)

    def close(self, send_rst):
        if self.closed:
            return
        self.closed = True
        if self.sock in sel.get_map():
            sel.unregister(self.sock)
        self.sock.close()
        self.dev.connections.pop((self.local_port, self.guest_port), None)
        if send_rst:
            self.send(OP_RST)

    def on_host_readable(self):
        want = min(self.credit(), 65536)
        if want <= 0:
            return self.update_interest()
        try:
            data = self.sock.recv(want)
        except BlockingIOError:
            return
        except OSError:
            return self.close(send_rst=True)
        if not data:                         # host half-closed: the guest may still send
            self.host_eof = True
            self.send(OP_SHUTDOWN, flags=SHUT_SEND)
            self.update_interest()
            return self.maybe_finish()
        if CORRUPT and self.rx_cnt <= 100000 < self.rx_cnt + len(data):
            data = bytearray(data)
            data[100000 - self.rx_cnt] ^= 1
            data = bytes(data)
        self.send(OP_RW, data)
        self.update_interest()

    def flush(self):
        if self.pending:
            try:
                written = self.sock.send(self.pending)
            except BlockingIOError:
                written = 0
            except OSError:
                return self.close(send_rst=True)
            del self.pending[:written]
            self.fwd_cnt += written
            if written and (self.fwd_cnt - self.last_fwd_advertised >= TX_BUF // 4 or not self.pending):
                self.send(OP_CREDIT_UPDATE)
        if not self.pending and self.guest_shutdown & SHUT_SEND and not self.host_write_shut:
            self.host_write_shut = True       # the guest's SHUT_WR, passed on once its data is out
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self.maybe_finish()
        self.update_interest()

    def maybe_finish(self):
        if not self.closed and self.guest_shutdown == SHUT_RCV | SHUT_SEND and not self.pending:
            self.close(send_rst=True)

    def on_guest_packet(self, op, flags, payload):
        if op == OP_RESPONSE and not self.connected:
            self.connected = True
            self.sock.setblocking(True)
            self.sock.sendall(b'OK %d\n' % self.guest_port)
            self.sock.setblocking(False)
        elif op == OP_RW:
            self.pending += payload
            self.flush()
        elif op == OP_CREDIT_REQUEST:
            self.send(OP_CREDIT_UPDATE)
        elif op == OP_SHUTDOWN:
            self.guest_shutdown |= flags & (SHUT_RCV | SHUT_SEND)
            self.flush()
        elif op == OP_RST:
            self.close(send_rst=False)
        self.update_interest()


class Device:
    def __init__(self, cid, socket_path, uds_path):
        self.cid, self.uds_path = cid, uds_path
        self.vhost_listener = listen(socket_path, 1)
        self.uds_listener = listen(uds_path, 128)
        sel.register(self.vhost_listener, selectors.EVENT_READ, ('vhost-listen', self))
        sel.register(self.uds_listener, selectors.EVENT_READ, ('uds-listen', self))
        self.next_local_port = 1024
        self.vmm = None
        self.reset()
        devices[cid] = self

    def reset(self):
        self.mem = None
        self.rings = [Ring(), Ring()]
        self.rx_backlog = collections.deque()
        self.connections = {}

    def ring_live(self, index):
        r = self.rings[index]
        return self.mem is not None and r.started and r.enabled

    def deliver(self, header, payload):
        self.rx_backlog.append((header, payload))
        self.process_rx()

    def process_rx(self):
        if not self.ring_live(RX):
            return
        ring, used = self.rings[RX], False
        while self.rx_backlog:
            chain = ring.pop(self.mem)
            if chain is None:
                break
            head, buffers = chain
            header, payload = self.rx_backlog[0]
            room = sum(length for _, length, _ in buffers) - HDR.size
            if len(payload) > room:          # a stream may be split across RX buffers
                fields = list(HDR.unpack(header))
                fields[4] = room
                data = HDR.pack(*fields) + payload[:room]
                fields[4] = len(payload) - room
                self.rx_backlog[0] = (HDR.pack(*fields), payload[room:])
            else:
                self.rx_backlog.popleft()
                data = header + payload
            offset = 0
            for addr, length, _ in buffers:
                if offset >= len(data):
                    break
                part = data[offset:offset + length]
                self.mem.write(addr, part)
                offset += len(part)
            ring.put(self.mem, head, len(data))
            used = True
        if used:
            ring.notify()

    def process_tx(self):
        if not self.ring_live(TX):
            return
        ring, used = self.rings[TX], False
        while True:
            chain = ring.pop(self.mem)
            if chain is None:
                break
            head, buffers = chain
            data = b''.join(self.mem.read(addr, length) for addr, length, writable in buffers if not writable)
            ring.put(self.mem, head, 0)
            used = True
            self.on_guest_packet(data[:HDR.size], data[HDR.size:])
        if used:
            ring.notify()
        self.process_rx()

    def rst_to_guest(self, guest_cid, local_port, guest_port):
        self.deliver(HDR.pack(HOST_CID, guest_cid, local_port, guest_port, 0, 1, OP_RST, 0, 0, 0), b'')

    def on_guest_packet(self, header, rest):
        src_cid, dst_cid, src_port, dst_port, length, _, op, flags, buf_alloc, fwd_cnt = HDR.unpack(header)
        payload = rest[:length]
        if dst_cid != HOST_CID:
            sibling = devices.get(dst_cid)
            if sibling is not None:
                sibling.deliver(header, payload)
            return
        conn = self.connections.get((dst_port, src_port))
        if conn is None:
            if op == OP_REQUEST:
                self.connect_to_host(src_cid, src_port, dst_port, buf_alloc, fwd_cnt)
            elif op != OP_RST:
                self.rst_to_guest(src_cid, dst_port, src_port)
            return
        conn.peer_buf_alloc, conn.peer_fwd_cnt = buf_alloc, fwd_cnt
        conn.on_guest_packet(op, flags, payload)

    def connect_to_host(self, guest_cid, guest_port, port, buf_alloc, fwd_cnt):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect('%s_%d' % (self.uds_path, port))
        except OSError:
            sock.close()
            if not NO_RST:
                self.rst_to_guest(guest_cid, port, guest_port)
            return
        conn = Connection(self, sock, port, guest_port, host_initiated=False)
        conn.peer_buf_alloc, conn.peer_fwd_cnt = buf_alloc, fwd_cnt
        self.connections[(port, guest_port)] = conn
        conn.send(OP_RESPONSE)
        conn.update_interest()

    def accept_host(self):
        sock, _ = self.uds_listener.accept()
        if self.mem is None:
            return sock.close()
        sock.settimeout(2)
        line = b''
        try:
            while not line.endswith(b'\n') and len(line) < 64:
                byte = sock.recv(1)
                if not byte:
                    break
                line += byte
        except OSError:
            pass
        words = line.split()
        if len(words) != 2 or words[0].upper() != b'CONNECT' or not words[1].isdigit():
            return sock.close()
        port, local_port = int(words[1]), self.next_local_port
        self.next_local_port += 1
        conn = Connection(self, sock, local_port, port, host_initiated=True)
        self.connections[(local_port, port)] = conn
        conn.send(OP_REQUEST)

    def vmm_gone(self):
        log('VMM of cid %d disconnected' % self.cid)
        sel.unregister(self.vmm)
        self.vmm.close()
        self.vmm = None
        for ring in self.rings:
            if ring.kick is not None:
                sel.unregister(ring.kick)
                os.close(ring.kick)
            if ring.call is not None:
                os.close(ring.call)
        for conn in list(self.connections.values()):
            conn.closed = True
            if conn.sock in sel.get_map():
                sel.unregister(conn.sock)
            conn.sock.close()
        self.reset()


def listen(path, backlog):
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(backlog)
    return sock


def vhost_receive(sock):
    fds = array.array('i')
    head, ancillary, _, _ = sock.recvmsg(12, socket.CMSG_SPACE(8 * fds.itemsize))
    if len(head) < 12:
        raise EOFError
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    request, _, size = struct.unpack('<III', head)
    body = b''
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    return request, body, list(fds)


def vhost_reply(dev, request, body):
    dev.vmm.sendall(struct.pack('<III', request, 0x1 | 0x4, len(body)) + body)


def handle_vhost(dev):
    request, body, fds = vhost_receive(dev.vmm)
    if request == 1:                                   # GET_FEATURES: VERSION_1 | PROTOCOL_FEATURES
        vhost_reply(dev, request, struct.pack('<Q', (1 << 32) | (1 << 30)))
    elif request == 15:                                # GET_PROTOCOL_FEATURES: MQ | CONFIG
        vhost_reply(dev, request, struct.pack('<Q', 0x201))
    elif request == 17:                                # GET_QUEUE_NUM
        vhost_reply(dev, request, struct.pack('<Q', 3))
    elif request == 24:                                # GET_CONFIG: le64 guest_cid
        offset, size, _ = struct.unpack('<III', body[:12])
        config = struct.pack('<Q', dev.cid)
        vhost_reply(dev, request, body[:12] + config[offset:offset + size].ljust(size, b'\0'))
    elif request == 5:                                 # SET_MEM_TABLE
        count = struct.unpack('<I', body[:4])[0]
        dev.mem = Memory([Region(*struct.unpack('<QQQQ', body[8 + 32 * i:40 + 32 * i]), fds[i]) for i in range(count)])
    elif request in (8, 10, 18):                       # SET_VRING_NUM / _BASE / _ENABLE
        index, value = struct.unpack('<II', body[:8])
        if index < 2:
            ring = dev.rings[index]
            if request == 8:
                ring.num = value
            elif request == 10:
                ring.last_avail = value
            else:
                ring.enabled = bool(value)
                dev.process_tx()
    elif request == 9:                                 # SET_VRING_ADDR (VMM addresses)
        index, _, desc, used, avail, _ = struct.unpack('<IIQQQQ', body[:40])
        if index < 2:
            ring = dev.rings[index]
            ring.desc, ring.used, ring.avail = (dev.mem.uva_to_gpa(a) for a in (desc, used, avail))
    elif request == 11:                                # GET_VRING_BASE: stop the ring
        index = struct.unpack('<I', body[:4])[0]
        ring = dev.rings[index] if index < 2 else Ring()
        ring.started = False
        vhost_reply(dev, request, struct.pack('<II', index, ring.last_avail))
    elif request in (12, 13):                          # SET_VRING_KICK / _CALL
        index = struct.unpack('<Q', body[:8])[0] & 0xff
        fd = fds[0] if fds else None
        if index >= 2:
            if fd is not None:
                os.close(fd)
            return
        ring = dev.rings[index]
        if request == 12:
            if ring.kick is not None:
                sel.unregister(ring.kick)
                os.close(ring.kick)
            ring.kick, ring.started = fd, True
            sel.register(fd, selectors.EVENT_READ, ('kick', (dev, index)))
            dev.process_tx()
        else:
            if ring.call is not None:
                os.close(ring.call)
            ring.call = fd
    else:                                              # SET_OWNER, SET_FEATURES, SET_VRING_ERR, ...
        for fd in fds:
            os.close(fd)


def parse_arguments(argv):
    vms, top, i = [], {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith('--') and '=' in arg:
            key, value = arg[2:].split('=', 1)
            i += 1
        else:
            key, value = arg[2:], argv[i + 1]
            i += 2
        if key == 'vm':
            vms.append({k.replace('_', '-'): v for k, v in (kv.split('=', 1) for kv in value.split(','))})
        elif key == 'config':                          # just the YAML shape the tests write
            current = None
            with open(value) as f:
                for line in f:
                    text = line.strip()
                    if text.startswith('- '):
                        current = {}
                        vms.append(current)
                        text = text[2:]
                    if ':' in text and current is not None:
                        k, v = text.split(':', 1)
                        current[k.strip().replace('_', '-')] = v.strip()
        else:
            top[key] = value
    return vms or [top]


def main():
    for vm in parse_arguments(sys.argv[1:]):
        Device(int(vm.get('guest-cid', 3)), vm['socket'], vm['uds-path'])
    log('serving cids', sorted(devices))
    while True:
        for key, mask in sel.select():
            kind, target = key.data
            if kind == 'vhost-listen':
                sock, _ = target.vhost_listener.accept()
                if target.vmm is not None:
                    sock.close()
                    continue
                target.vmm = sock
                sel.register(sock, selectors.EVENT_READ, ('vhost', target))
            elif kind == 'vhost':
                try:
                    handle_vhost(target)
                except (EOFError, ConnectionResetError):
                    target.vmm_gone()
            elif kind == 'kick':
                dev, index = target
                try:
                    os.read(key.fd, 8)
                except BlockingIOError:
                    pass
                if index == TX:
                    dev.process_tx()
                else:
                    dev.process_rx()
            elif kind == 'uds-listen':
                target.accept_host()
            elif kind == 'conn':
                if mask & selectors.EVENT_WRITE:
                    target.flush()
                if not target.closed and mask & selectors.EVENT_READ:
                    target.on_host_readable()
                target.dev.process_rx()


if __name__ == '__main__':
    main()
