/*
 * vsock-test: the guest half of the end-to-end rig. Runs inside a QEMU guest
 * (never on the build host) and drives AF_VSOCK sockets in one of several
 * modes chosen by argv[1]. Everything the host-side tests read is printed on
 * stdout (the serial console) as single-write lines starting with
 * "VSOCKTEST ", so lines from concurrent children never interleave mid-line.
 *
 * Data is a position-addressable pseudo-random stream (splitmix64 of the
 * 8-byte block index plus a seed) so the host can regenerate any byte, and
 * checksums are 64-bit FNV-1a; src/Vsock.Testing/HostSide/TestPattern.cs is the
 * C# twin of both and must stay byte-for-byte identical.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef VMADDR_FLAG_TO_HOST
#define VMADDR_FLAG_TO_HOST 0x01
#endif

#define IO_CHUNK 65536
#define DEFAULT_SEED 1u
#define READY_DIR "/tmp"

static const char *g_mode = "?";
/* svm_flags of the address connect() is given (connect's FLAGS argument: 1 = VMADDR_FLAG_TO_HOST). */
static uint8_t g_connect_flags;
/* Seconds each process may run (VT_TIMEOUT, default 120; 0 = no limit). alarm() is not inherited by fork. */
static unsigned g_timeout = 120;

/* One write(2) per line: the console is shared by forked children. */
static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)(sizeof line - 2);
	line[n++] = '\n';
	ssize_t off = 0;
	while (off < n) {
		ssize_t w = write(STDOUT_FILENO, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

static void fail(const char *what, int err) __attribute__((noreturn));
static void fail(const char *what, int err)
{
	emit("VSOCKTEST FAIL %s %s errno=%d (%s)", g_mode, what, err, strerror(err));
	exit(1);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "VSOCKTEST FAIL timeout (VT_TIMEOUT expired)\n";
	ssize_t ignored = write(STDOUT_FILENO, msg, sizeof msg - 1);
	(void)ignored;
	_exit(3);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- data pattern and checksum (mirrored in TestPattern.cs) ---------------- */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* Byte i of stream `seed` is byte (i % 8) (little-endian) of splitmix64(seed * 2^32 + i / 8). */
static void pattern_fill(uint8_t *buf, uint64_t offset, size_t len, uint64_t seed)
{
	size_t i = 0;
	while (i < len) {
		uint64_t pos = offset + i;
		uint64_t block = splitmix64((seed << 32) + (pos >> 3));
		unsigned lane = (unsigned)(pos & 7);
		for (; lane < 8 && i < len; lane++, i++)
			buf[i] = (uint8_t)(block >> (8 * lane));
	}
}

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* ---- argument and socket helpers ------------------------------------------- */

static uint64_t arg_u64(int argc, char **argv, int i, const char *name, int required, uint64_t dflt)
{
	if (i >= argc) {
		if (!required)
			return dflt;
		emit("VSOCKTEST FAIL %s missing argument %s", g_mode, name);
		exit(2);
	}
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(argv[i], &end, 0);
	if (errno != 0 || end == argv[i] || *end != '\0') {
		emit("VSOCKTEST FAIL %s bad %s '%s'", g_mode, name, argv[i]);
		exit(2);
	}
	return v;
}

static struct sockaddr_vm vm_addr(uint32_t cid, uint32_t port)
{
	struct sockaddr_vm a;
	memset(&a, 0, sizeof a);
	a.svm_family = AF_VSOCK;
	a.svm_cid = cid;
	a.svm_port = port;
	return a;
}

/* SOCK_STREAM or SOCK_SEQPACKET (the latter needs VIRTIO_VSOCK_F_SEQPACKET: ESOCKTNOSUPPORT at connect/listen otherwise). */
static int vsock_socket_of(int type)
{
	int fd = socket(AF_VSOCK, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket", errno);
	return fd;
}

static int vsock_listen_of(int type, uint32_t port, int backlog)
{
	int fd = vsock_socket_of(type);
	struct sockaddr_vm a = vm_addr(VMADDR_CID_ANY, port);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
		fail("bind", errno);
	if (listen(fd, backlog) < 0)
		fail("listen", errno);
	/* The file lets /init's wait-ready step sequence a client after this listener. */
	char path[64];
	snprintf(path, sizeof path, READY_DIR "/vsocktest-ready-%u", port);
	int rf = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (rf >= 0)
		close(rf);
	emit("VSOCKTEST READY %u", port);
	return fd;
}

static int vsock_listen(uint32_t port, int backlog)
{
	return vsock_listen_of(SOCK_STREAM, port, backlog);
}

static int vsock_accept(int lfd, char *peer, size_t peer_len)
{
	for (;;) {
		struct sockaddr_vm a;
		socklen_t alen = sizeof a;
		int fd = accept4(lfd, (struct sockaddr *)&a, &alen, SOCK_CLOEXEC);
		if (fd >= 0) {
			snprintf(peer, peer_len, "%u:%u", a.svm_cid, a.svm_port);
			return fd;
		}
		if (errno != EINTR)
			fail("accept", errno);
	}
}

static int vsock_connect_of(int type, uint32_t cid, uint32_t port)
{
	int fd = vsock_socket_of(type);
	struct sockaddr_vm a = vm_addr(cid, port);
	a.svm_flags = g_connect_flags;
	while (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		if (errno != EINTR)
			fail("connect", errno);
	}
	return fd;
}

static int vsock_connect(uint32_t cid, uint32_t port)
{
	return vsock_connect_of(SOCK_STREAM, cid, port);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		fail("fcntl", errno);
}

/* ---- echo server ------------------------------------------------------------ */

/* Echo until EOF, then close. Runs in a forked child; exit status 0 on success. */
static void echo_child(int fd, uint32_t port, const char *peer)
{
	static uint8_t buf[IO_CHUNK];
	uint64_t total = 0, h = FNV_OFFSET;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ECONNRESET) {
			close(fd);
			emit("VSOCKTEST ECHO-RESET port=%u peer=%s errno=%d after %" PRIu64, port, peer, errno, total);
			_exit(0);
		}
		if (r < 0) {
			emit("VSOCKTEST FAIL echo port=%u peer=%s read errno=%d after %" PRIu64, port, peer, errno, total);
			_exit(1);
		}
		if (r == 0)
			break;
		h = fnv1a(h, buf, (size_t)r);
		total += (uint64_t)r;
		int err = write_all(fd, buf, (size_t)r);
		if (err == -EPIPE || err == -ECONNRESET) {
			/* The peer closed mid-transfer (a scenario of its own): report it, it is not our failure. */
			close(fd);
			emit("VSOCKTEST ECHO-RESET port=%u peer=%s errno=%d after %" PRIu64, port, peer, -err, total);
			_exit(0);
		}
		if (err < 0) {
			emit("VSOCKTEST FAIL echo port=%u peer=%s write errno=%d after %" PRIu64, port, peer, -err, total);
			_exit(1);
		}
	}
	close(fd);
	emit("VSOCKTEST ECHO port=%u peer=%s bytes=%" PRIu64 " sha=%016" PRIx64, port, peer, total, h);
	_exit(0);
}

/* Reads `limit` bytes (or to EOF) and closes without draining: a mid-transfer close. */
static void close_mid(int fd, uint32_t port, const char *peer, uint64_t limit)
{
	static uint8_t buf[IO_CHUNK];
	uint64_t total = 0;
	while (total < limit) {
		size_t want = limit - total < sizeof buf ? (size_t)(limit - total) : sizeof buf;
		ssize_t r = read(fd, buf, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		total += (uint64_t)r;
	}
	close(fd);
	emit("VSOCKTEST CLOSED-MID port=%u peer=%s read=%" PRIu64, port, peer, total);
}

/* Accepts `n` connections (0 = forever), each echoed by its own child process. */
static int serve_echo(int lfd, uint32_t port, uint64_t n)
{
	uint64_t accepted = 0, failed = 0, running = 0;
	if (n == 0)
		alarm(0); /* a server without a connection count lives until the guest powers off */
	while (n == 0 || accepted < n) {
		char peer[32];
		int fd = vsock_accept(lfd, peer, sizeof peer);
		pid_t pid = fork();
		if (pid < 0)
			fail("fork", errno);
		if (pid == 0) {
			close(lfd);
			alarm(g_timeout);
			echo_child(fd, port, peer);
		}
		close(fd);
		accepted++;
		running++;
		/* Reap finished children as we go so an endless server does not pile up zombies. */
		int st;
		pid_t done;
		while (running > 0 && (done = waitpid(-1, &st, WNOHANG)) > 0) {
			running--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				failed++;
		}
	}
	close(lfd);
	while (running > 0) {
		int st;
		pid_t done = waitpid(-1, &st, 0);
		if (done < 0 && errno == EINTR)
			continue;
		if (done < 0)
			break;
		running--;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	emit("VSOCKTEST RESULT listen-echo port=%u conns=%" PRIu64 " failed=%" PRIu64, port, accepted, failed);
	return failed == 0 ? 0 : 1;
}

static int mode_listen_echo(int argc, char **argv)
{
	uint32_t port = (uint32_t)arg_u64(argc, argv, 2, "PORT", 1, 0);
	uint64_t n = arg_u64(argc, argv, 3, "N_CONNS", 0, 1);
	int lfd = vsock_listen(port, 128);
	return serve_echo(lfd, port, n);
}

static int mode_listen_close_mid(int argc, char **argv)
{
	uint32_t port = (uint32_t)arg_u64(argc, argv, 2, "PORT", 1, 0);
	uint64_t limit = arg_u64(argc, argv, 3, "BYTES", 0, 65536);
	uint64_t after = arg_u64(argc, argv, 4, "N_AFTER", 0, 1);
	int lfd = vsock_listen(port, 128);
	char peer[32];
	int fd = vsock_accept(lfd, peer, sizeof peer);
	close_mid(fd, port, peer, limit);
	if (after == 0) {
		close(lfd);
		return 0;
	}
	return serve_echo(lfd, port, after);
}

/* ---- clients ---------------------------------------------------------------- */

struct xfer {
	uint64_t sent, recv, sha, rsha, ms;
	int ok;
};

/*
 * Sends `bytes` of stream `seed` while reading whatever comes back, half-closes
 * after the last byte and reads to EOF. Reading concurrently matters: an echo
 * peer stops reading once its own send credit is used up.
 */
static struct xfer do_connect(uint32_t cid, uint32_t port, uint64_t bytes, uint64_t seed)
{
	static uint8_t out[IO_CHUNK], in[IO_CHUNK];
	struct xfer x = {0, 0, FNV_OFFSET, FNV_OFFSET, 0, 0};
	uint64_t t0 = now_us();
	int fd = vsock_connect(cid, port);
	set_nonblocking(fd);
	size_t out_len = 0, out_off = 0;
	int wr_open = 1;
	if (bytes == 0) {
		shutdown(fd, SHUT_WR);
		wr_open = 0;
	}
	for (;;) {
		struct pollfd p = {fd, POLLIN | (wr_open ? POLLOUT : 0), 0};
		int pr = poll(&p, 1, -1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			fail("poll", errno);
		if (wr_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
			if (out_off == out_len) {
				uint64_t left = bytes - x.sent;
				out_len = left < sizeof out ? (size_t)left : sizeof out;
				pattern_fill(out, x.sent, out_len, seed);
				x.sha = fnv1a(x.sha, out, out_len);
				out_off = 0;
			}
			ssize_t w = write(fd, out + out_off, out_len - out_off);
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				fail("write", errno);
			if (w > 0) {
				out_off += (size_t)w;
				if (out_off == out_len)
					x.sent += out_len;
				if (x.sent == bytes && out_off == out_len) {
					if (shutdown(fd, SHUT_WR) < 0)
						fail("shutdown", errno);
					wr_open = 0;
				}
			}
		}
		if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
			ssize_t r = read(fd, in, sizeof in);
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				fail("read", errno);
			if (r == 0)
				break;
			if (r > 0) {
				x.rsha = fnv1a(x.rsha, in, (size_t)r);
				x.recv += (uint64_t)r;
			}
		}
	}
	close(fd);
	x.ms = (now_us() - t0) / 1000u;
	if (wr_open)
		emit("VSOCKTEST FAIL connect peer closed after %" PRIu64 " of %" PRIu64 " bytes sent", x.sent, bytes);
	x.ok = !wr_open && x.sent == x.recv && x.sha == x.rsha;
	return x;
}

static int mode_connect(int argc, char **argv)
{
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	uint64_t bytes = arg_u64(argc, argv, 4, "BYTES", 1, 0);
	uint64_t seed = arg_u64(argc, argv, 5, "SEED", 0, DEFAULT_SEED);
	g_connect_flags = (uint8_t)arg_u64(argc, argv, 6, "FLAGS", 0, 0);
	struct xfer x = do_connect(cid, port, bytes, seed);
	emit("VSOCKTEST RESULT connect cid=%u port=%u seed=%" PRIu64 " sent=%" PRIu64 " recv=%" PRIu64
	     " sha=%016" PRIx64 " rsha=%016" PRIx64 " ms=%" PRIu64 " ok=%d flags=%u",
	     cid, port, seed, x.sent, x.recv, x.sha, x.rsha, x.ms, x.ok, g_connect_flags);
	return x.ok ? 0 : 1;
}

/* N concurrent connect clients, seeds SEED0..SEED0+N-1. */
static int mode_connect_many(int argc, char **argv)
{
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	uint64_t n = arg_u64(argc, argv, 4, "N", 1, 0);
	uint64_t bytes = arg_u64(argc, argv, 5, "BYTES", 1, 0);
	uint64_t seed0 = arg_u64(argc, argv, 6, "SEED0", 0, 100);
	for (uint64_t i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			fail("fork", errno);
		if (pid == 0) {
			alarm(g_timeout);
			struct xfer x = do_connect(cid, port, bytes, seed0 + i);
			emit("VSOCKTEST RESULT connect cid=%u port=%u seed=%" PRIu64 " sent=%" PRIu64 " recv=%" PRIu64
			     " sha=%016" PRIx64 " rsha=%016" PRIx64 " ms=%" PRIu64 " ok=%d",
			     cid, port, seed0 + i, x.sent, x.recv, x.sha, x.rsha, x.ms, x.ok);
			_exit(x.ok ? 0 : 1);
		}
	}
	uint64_t ok = 0, done = 0;
	while (done < n) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break;
		done++;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	emit("VSOCKTEST RESULT connect-many port=%u n=%" PRIu64 " ok=%" PRIu64, port, n, ok);
	return ok == n ? 0 : 1;
}

/* Reads one line (without '\n') from a blocking fd into `line`; stops at EOF. */
static void read_line(int fd, char *line, size_t cap)
{
	size_t len = 0;
	while (len + 1 < cap) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n')
			break;
		if (c != '\r')
			line[len++] = c;
	}
	line[len] = '\0';
}

static int mode_send(int argc, char **argv)
{
	static uint8_t out[IO_CHUNK];
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	uint64_t bytes = arg_u64(argc, argv, 4, "BYTES", 1, 0);
	uint64_t seed = arg_u64(argc, argv, 5, "SEED", 0, DEFAULT_SEED);
	uint64_t t0 = now_us();
	int fd = vsock_connect(cid, port);
	uint64_t sent = 0, h = FNV_OFFSET;
	while (sent < bytes) {
		size_t n = bytes - sent < sizeof out ? (size_t)(bytes - sent) : sizeof out;
		pattern_fill(out, sent, n, seed);
		h = fnv1a(h, out, n);
		int err = write_all(fd, out, n);
		if (err < 0)
			fail("write", -err);
		sent += n;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		fail("shutdown", errno);
	char reply[256];
	read_line(fd, reply, sizeof reply);
	close(fd);
	char expect[128];
	snprintf(expect, sizeof expect, "SINK bytes=%" PRIu64 " sha=%016" PRIx64, sent, h);
	int ok = strcmp(reply, expect) == 0;
	emit("VSOCKTEST RESULT send cid=%u port=%u seed=%" PRIu64 " sent=%" PRIu64 " sha=%016" PRIx64
	     " ms=%" PRIu64 " ok=%d reply=%s",
	     cid, port, seed, sent, h, (now_us() - t0) / 1000u, ok, reply[0] ? reply : "<none>");
	return ok ? 0 : 1;
}

/*
 * Connects, sends `bytes` and closes without shutdown or reading: a mid-transfer close. A write error
 * (the peer closed first) ends the sending early; it is reported, not a failure.
 */
static int mode_connect_close_mid(int argc, char **argv)
{
	static uint8_t out[IO_CHUNK];
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	uint64_t bytes = arg_u64(argc, argv, 4, "BYTES", 1, 0);
	int fd = vsock_connect(cid, port);
	uint64_t sent = 0;
	int werr = 0;
	while (sent < bytes) {
		size_t n = bytes - sent < sizeof out ? (size_t)(bytes - sent) : sizeof out;
		pattern_fill(out, sent, n, DEFAULT_SEED);
		int err = write_all(fd, out, n);
		if (err < 0) {
			werr = -err;
			break;
		}
		sent += n;
	}
	close(fd);
	emit("VSOCKTEST RESULT connect-close-mid cid=%u port=%u sent=%" PRIu64 " werr=%d", cid, port, sent, werr);
	return 0;
}

/* Connects, sends the words joined by spaces plus '\n', half-closes and prints whatever comes back (for the demo). */
static int mode_message(int argc, char **argv)
{
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	char text[512] = "";
	size_t len = 0;
	for (int i = 4; i < argc && len + 2 < sizeof text; i++) {
		int n = snprintf(text + len, sizeof text - len - 1, "%s%s", i > 4 ? " " : "", argv[i]);
		if (n < 0)
			break;
		len = strlen(text);
	}
	text[len++] = '\n';
	int fd = vsock_connect(cid, port);
	int err = write_all(fd, (const uint8_t *)text, len);
	if (err < 0)
		fail("write", -err);
	if (shutdown(fd, SHUT_WR) < 0)
		fail("shutdown", errno);
	char reply[256];
	read_line(fd, reply, sizeof reply);
	close(fd);
	text[len - 1] = '\0';
	emit("VSOCKTEST RESULT message cid=%u port=%u sent=\"%s\" reply=%s", cid, port, text, reply);
	return 0;
}

static int mode_sink(int argc, char **argv)
{
	static uint8_t buf[IO_CHUNK];
	uint32_t port = (uint32_t)arg_u64(argc, argv, 2, "PORT", 1, 0);
	int lfd = vsock_listen(port, 1);
	char peer[32];
	int fd = vsock_accept(lfd, peer, sizeof peer);
	close(lfd);
	uint64_t total = 0, h = FNV_OFFSET, t0 = now_us();
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("read", errno);
		if (r == 0)
			break;
		h = fnv1a(h, buf, (size_t)r);
		total += (uint64_t)r;
	}
	uint64_t us = now_us() - t0;
	char reply[128];
	int n = snprintf(reply, sizeof reply, "SINK bytes=%" PRIu64 " sha=%016" PRIx64 "\n", total, h);
	int err = write_all(fd, (const uint8_t *)reply, (size_t)n);
	close(fd);
	if (err < 0)
		fail("reply", -err);
	emit("VSOCKTEST RESULT sink port=%u peer=%s bytes=%" PRIu64 " sha=%016" PRIx64 " ms=%" PRIu64, port, peer,
	     total, h, us / 1000u);
	return 0;
}

static int connect_refused(int type, int argc, char **argv)
{
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	int fd = vsock_socket_of(type);
	struct sockaddr_vm a = vm_addr(cid, port);
	uint64_t t0 = now_us();
	int rc;
	do
		rc = connect(fd, (struct sockaddr *)&a, sizeof a);
	while (rc < 0 && errno == EINTR);
	int err = rc < 0 ? errno : 0;
	uint64_t ms = (now_us() - t0) / 1000u;
	close(fd);
	if (rc == 0) {
		emit("VSOCKTEST FAIL connect-refused cid=%u port=%u connected ms=%" PRIu64, cid, port, ms);
		return 1;
	}
	emit("VSOCKTEST REFUSED cid=%u port=%u errno=%d ms=%" PRIu64, cid, port, err, ms);
	return 0;
}

static int mode_connect_refused(int argc, char **argv)
{
	return connect_refused(SOCK_STREAM, argc, argv);
}

static int mode_seq_connect_refused(int argc, char **argv)
{
	return connect_refused(SOCK_SEQPACKET, argc, argv);
}

/* ---- SOCK_SEQPACKET ---------------------------------------------------------- */

/* Largest message these modes send or take (the test's messages are at most 200,000 bytes). */
#define SEQ_MAX 262144

static const uint32_t seq_named[] = {1, 100, 4095, 4096, 4097, 65536, 65537, 200000};
#define SEQ_NAMED (sizeof seq_named / sizeof seq_named[0])

/* Message i: the lengths first, then seeded random ones of 1..200,000 bytes; its bytes are stream (seed << 16) + i. */
static size_t seq_length(uint64_t i, uint64_t seed)
{
	if (i < SEQ_NAMED)
		return seq_named[i];
	return (size_t)(splitmix64((seed << 32) ^ (0xA5A5u + i)) % 200000u) + 1;
}

static uint64_t seq_stream(uint64_t i, uint64_t seed)
{
	return (seed << 16) + i;
}

/* One recvmsg: the whole next message (MSG_TRUNC if it did not fit), its flags in *flags. */
static ssize_t seq_recv(int fd, uint8_t *buf, size_t cap, int *flags)
{
	for (;;) {
		struct iovec iov = {buf, cap};
		struct msghdr m;
		memset(&m, 0, sizeof m);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		ssize_t r = recvmsg(fd, &m, 0);
		if (r < 0 && errno == EINTR)
			continue;
		*flags = m.msg_flags;
		return r < 0 ? -errno : r;
	}
}

static int seq_send(int fd, const uint8_t *buf, size_t len, int eor)
{
	for (;;) {
		ssize_t w = send(fd, buf, len, eor ? MSG_EOR : 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		return w == (ssize_t)len ? 0 : -EIO;
	}
}

/* Echoes every message whole (MSG_EOR kept) until EOF. Runs in a forked child. */
static void seq_echo_child(int fd, uint32_t port, const char *peer)
{
	static uint8_t buf[SEQ_MAX + 1];
	uint64_t messages = 0, total = 0, eors = 0, h = FNV_OFFSET;
	for (;;) {
		int flags = 0;
		ssize_t r = seq_recv(fd, buf, sizeof buf, &flags);
		if (r == -ECONNRESET) {
			emit("VSOCKTEST SEQECHO-RESET port=%u peer=%s after messages=%" PRIu64, port, peer, messages);
			_exit(0);
		}
		if (r < 0) {
			emit("VSOCKTEST FAIL seq-echo port=%u peer=%s recv errno=%d after messages=%" PRIu64, port, peer, (int)-r, messages);
			_exit(1);
		}
		if (r == 0)
			break;
		if (flags & MSG_TRUNC) {
			emit("VSOCKTEST FAIL seq-echo port=%u peer=%s message %" PRIu64 " truncated", port, peer, messages);
			_exit(1);
		}
		h = fnv1a(h, buf, (size_t)r);
		messages++;
		total += (uint64_t)r;
		if (flags & MSG_EOR)
			eors++;
		int err = seq_send(fd, buf, (size_t)r, (flags & MSG_EOR) != 0);
		if (err < 0) {
			emit("VSOCKTEST FAIL seq-echo port=%u peer=%s send errno=%d message %" PRIu64 " of %zd bytes", port, peer, -err, messages, r);
			_exit(1);
		}
	}
	close(fd);
	emit("VSOCKTEST SEQECHO port=%u peer=%s messages=%" PRIu64 " bytes=%" PRIu64 " eors=%" PRIu64 " sha=%016" PRIx64, port, peer,
	     messages, total, eors, h);
	_exit(0);
}

/* A SOCK_SEQPACKET listener whose connections (N, 0 = forever) are each echoed message by message. */
static int mode_seq_listen_echo(int argc, char **argv)
{
	uint32_t port = (uint32_t)arg_u64(argc, argv, 2, "PORT", 1, 0);
	uint64_t n = arg_u64(argc, argv, 3, "N_CONNS", 0, 1);
	int lfd = vsock_listen_of(SOCK_SEQPACKET, port, 16);
	uint64_t accepted = 0, failed = 0;
	if (n == 0)
		alarm(0);
	while (n == 0 || accepted < n) {
		char peer[32];
		int fd = vsock_accept(lfd, peer, sizeof peer);
		pid_t pid = fork();
		if (pid < 0)
			fail("fork", errno);
		if (pid == 0) {
			close(lfd);
			alarm(g_timeout);
			seq_echo_child(fd, port, peer);
		}
		close(fd);
		accepted++;
		int st;
		while (waitpid(-1, &st, WNOHANG) > 0)
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				failed++;
	}
	close(lfd);
	int st;
	while (waitpid(-1, &st, 0) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	emit("VSOCKTEST RESULT seq-listen-echo port=%u conns=%" PRIu64 " failed=%" PRIu64, port, accepted, failed);
	return failed == 0 ? 0 : 1;
}

/*
 * Connects SOCK_SEQPACKET and sends the lengths and then COUNT seeded random ones, one at a time,
 * each checked when its echo comes back: one message of the same length and bytes. With EOR=1 odd
 * messages go with MSG_EOR and the echo must carry MSG_EOR exactly on those (AF_VSOCK peers keep it;
 * unix sockets drop it, so through the unix backend the check is off).
 */
static int mode_seq_connect(int argc, char **argv)
{
	static uint8_t out[SEQ_MAX], in[SEQ_MAX + 1];
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	uint64_t count = arg_u64(argc, argv, 4, "COUNT", 1, 0);
	uint64_t seed = arg_u64(argc, argv, 5, "SEED", 0, DEFAULT_SEED);
	uint64_t eor_check = arg_u64(argc, argv, 6, "EOR", 0, 0);
	uint64_t n = SEQ_NAMED + count, total = 0, h = FNV_OFFSET, t0 = now_us();
	int fd = vsock_connect_of(SOCK_SEQPACKET, cid, port);
	for (uint64_t i = 0; i < n; i++) {
		size_t len = seq_length(i, seed);
		int eor = eor_check && (i & 1);
		pattern_fill(out, 0, len, seq_stream(i, seed));
		h = fnv1a(h, out, len);
		int err = seq_send(fd, out, len, eor);
		if (err < 0) {
			emit("VSOCKTEST FAIL seq-connect send errno=%d message %" PRIu64 " of %zu bytes", -err, i, len);
			return 1;
		}
		int flags = 0;
		ssize_t r = seq_recv(fd, in, sizeof in, &flags);
		if (r < 0 || (size_t)r != len || (flags & MSG_TRUNC) || memcmp(in, out, len) != 0 ||
		    (eor_check && ((flags & MSG_EOR) != 0) != eor)) {
			emit("VSOCKTEST FAIL seq-connect message %" PRIu64 " of %zu bytes came back as %zd bytes flags=0x%x%s", i, len, r,
			     flags, r == (ssize_t)len && memcmp(in, out, len) != 0 ? " with other bytes" : "");
			return 1;
		}
		total += len;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		fail("shutdown", errno);
	int flags = 0;
	ssize_t eof = seq_recv(fd, in, sizeof in, &flags);
	close(fd);
	emit("VSOCKTEST RESULT seq-connect cid=%u port=%u seed=%" PRIu64 " messages=%" PRIu64 " bytes=%" PRIu64
	     " sha=%016" PRIx64 " ms=%" PRIu64 " eof=%d ok=1",
	     cid, port, seed, n, total, h, (now_us() - t0) / 1000u, eof == 0);
	return 0;
}

static int mode_throughput(int argc, char **argv)
{
	static uint8_t out[IO_CHUNK];
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	uint64_t bytes = arg_u64(argc, argv, 4, "BYTES", 1, 0);
	pattern_fill(out, 0, sizeof out, DEFAULT_SEED);
	int fd = vsock_connect(cid, port);
	uint64_t t0 = now_us(), sent = 0;
	while (sent < bytes) {
		size_t n = bytes - sent < sizeof out ? (size_t)(bytes - sent) : sizeof out;
		int err = write_all(fd, out, n);
		if (err < 0)
			fail("write", -err);
		sent += n;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		fail("shutdown", errno);
	/* The sink's reply marks the moment the last byte arrived, not merely left this socket. */
	char reply[256];
	read_line(fd, reply, sizeof reply);
	uint64_t us = now_us() - t0;
	close(fd);
	double mbps = us > 0 ? (double)sent / (double)us : 0.0;
	emit("VSOCKTEST RESULT throughput cid=%u port=%u bytes=%" PRIu64 " ms=%" PRIu64 " MBps=%.2f reply=%s", cid, port,
	     sent, us / 1000u, mbps, reply[0] ? reply : "<none>");
	return reply[0] ? 0 : 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int mode_latency(int argc, char **argv)
{
	uint32_t cid = (uint32_t)arg_u64(argc, argv, 2, "CID", 1, 0);
	uint32_t port = (uint32_t)arg_u64(argc, argv, 3, "PORT", 1, 0);
	uint64_t n = arg_u64(argc, argv, 4, "N", 1, 0);
	if (n == 0 || n > 1000000) {
		emit("VSOCKTEST FAIL latency N must be 1..1000000");
		return 2;
	}
	uint64_t *rtt = calloc(n, sizeof *rtt);
	if (rtt == NULL)
		fail("calloc", ENOMEM);
	uint8_t ping[64], pong[64];
	pattern_fill(ping, 0, sizeof ping, DEFAULT_SEED);
	int fd = vsock_connect(cid, port);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t0 = now_us();
		int err = write_all(fd, ping, sizeof ping);
		if (err < 0)
			fail("write", -err);
		size_t got = 0;
		while (got < sizeof pong) {
			ssize_t r = read(fd, pong + got, sizeof pong - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				fail("read", errno);
			if (r == 0) {
				emit("VSOCKTEST FAIL latency peer closed at round %" PRIu64, i);
				return 1;
			}
			got += (size_t)r;
		}
		rtt[i] = now_us() - t0;
		if (memcmp(ping, pong, sizeof ping) != 0) {
			emit("VSOCKTEST FAIL latency echo mismatch at round %" PRIu64, i);
			return 1;
		}
	}
	shutdown(fd, SHUT_WR);
	close(fd);
	qsort(rtt, n, sizeof *rtt, cmp_u64);
	emit("VSOCKTEST RESULT latency cid=%u port=%u n=%" PRIu64 " p50us=%" PRIu64 " p99us=%" PRIu64 " maxus=%" PRIu64,
	     cid, port, n, rtt[n / 2], rtt[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], rtt[n - 1]);
	free(rtt);
	return 0;
}

/* Prints this guest's CID as the transport reports it (IOCTL on /dev/vsock, guest only). */
static int mode_cid(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("open /dev/vsock", errno);
	unsigned int cid = 0;
	if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
		fail("IOCTL_VM_SOCKETS_GET_LOCAL_CID", errno);
	close(fd);
	emit("VSOCKTEST CID %u", cid);
	return 0;
}

/* Prints checksums of the pattern so host and guest implementations can be compared. */
static int mode_pattern(int argc, char **argv)
{
	static uint8_t out[IO_CHUNK];
	uint64_t bytes = arg_u64(argc, argv, 2, "BYTES", 1, 0);
	uint64_t seed = arg_u64(argc, argv, 3, "SEED", 0, DEFAULT_SEED);
	uint64_t done = 0, h = FNV_OFFSET;
	while (done < bytes) {
		size_t n = bytes - done < sizeof out ? (size_t)(bytes - done) : sizeof out;
		pattern_fill(out, done, n, seed);
		h = fnv1a(h, out, n);
		done += n;
	}
	emit("VSOCKTEST RESULT pattern bytes=%" PRIu64 " seed=%" PRIu64 " sha=%016" PRIx64, bytes, seed, h);
	return 0;
}

struct mode {
	const char *name;
	int (*run)(int, char **);
	const char *usage;
};

static const struct mode modes[] = {
	{"listen-echo", mode_listen_echo, "PORT [N_CONNS (0 = forever, default 1)]"},
	{"listen-close-mid", mode_listen_close_mid, "PORT [BYTES (65536)] [N_AFTER echoed conns (1)]"},
	{"connect", mode_connect, "CID PORT BYTES [SEED] [FLAGS (1 = VMADDR_FLAG_TO_HOST)]"},
	{"connect-many", mode_connect_many, "CID PORT N BYTES [SEED0 (100)]"},
	{"connect-close-mid", mode_connect_close_mid, "CID PORT BYTES"},
	{"connect-refused", mode_connect_refused, "CID PORT"},
	{"seq-connect-refused", mode_seq_connect_refused, "CID PORT (SOCK_SEQPACKET)"},
	{"seq-listen-echo", mode_seq_listen_echo, "PORT [N_CONNS (0 = forever, default 1)] (SOCK_SEQPACKET)"},
	{"seq-connect", mode_seq_connect, "CID PORT COUNT [SEED] [EOR (0)] (SOCK_SEQPACKET: 8 named + COUNT random lengths, each echoed)"},
	{"sink", mode_sink, "PORT"},
	{"send", mode_send, "CID PORT BYTES [SEED]"},
	{"throughput", mode_throughput, "CID PORT BYTES"},
	{"latency", mode_latency, "CID PORT N"},
	{"message", mode_message, "CID PORT WORD... (sends the words as one line)"},
	{"cid", mode_cid, ""},
	{"pattern", mode_pattern, "BYTES [SEED]"},
};

int main(int argc, char **argv)
{
	/* A peer that vanished must produce a FAIL line, not a silent SIGPIPE death. */
	signal(SIGPIPE, SIG_IGN);
	const char *limit = getenv("VT_TIMEOUT");
	if (limit != NULL)
		g_timeout = (unsigned)strtoul(limit, NULL, 10);
	signal(SIGALRM, on_alarm);
	alarm(g_timeout);
	if (argc >= 2) {
		for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
			if (strcmp(argv[1], modes[i].name) == 0) {
				g_mode = modes[i].name;
				return modes[i].run(argc, argv);
			}
		}
	}
	fprintf(stderr, "usage: vsock-test MODE ARGS...\n");
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		fprintf(stderr, "  vsock-test %s %s\n", modes[i].name, modes[i].usage);
	emit("VSOCKTEST FAIL unknown mode %s", argc >= 2 ? argv[1] : "<none>");
	return 2;
}
