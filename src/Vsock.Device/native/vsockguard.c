/*
 * libvsockguard: keeps a VMM from killing the daemon by pulling guest memory away.
 *
 * Guest RAM is a MAP_SHARED mapping of a file the VMM owns. If the VMM shrinks that file
 * (ftruncate) after we mapped it, our next access past the new end of file raises SIGBUS; the
 * .NET runtime turns that into a fatal AccessViolationException (or, in native code, the default
 * action), and every VM served by the process goes down with it.
 *
 * This library installs a SIGBUS handler in front of the runtime's (saving the runtime's action).
 * Managed code registers the address range of every guest memory mapping. When a SIGBUS hits a
 * registered range, the handler maps private zero pages over the whole range (MAP_FIXED), counts
 * the fault in the range's "poisoned" counter and returns: the faulting instruction runs again and
 * succeeds on the zero page. The device sees the counter after its ring turn and ends that VMM's
 * session. A SIGBUS anywhere else is passed to the saved action unchanged.
 *
 * Async-signal safety: the handler only reads the range table (atomics), calls mmap and sigaction
 * (plain system calls) and preserves errno. The table is fixed-size: no allocation, no locks.
 * A range must be unregistered before it is unmapped, by the thread that accesses it (the device's
 * event-loop thread), so the handler never maps over an address that has been reused.
 *
 * Built by src/Vsock.Device/Vsock.Device.csproj (gcc -shared -fPIC -O2) into the output directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/* Guest memory regions of every VM in the process: up to 509 per VM (GET_MAX_MEM_SLOTS), but QEMU
 * uses a handful; 4096 covers hundreds of VMs. A full table is reported to the caller, not fatal. */
#define VSOCKGUARD_MAX_RANGES 4096

enum { SLOT_FREE = 0, SLOT_CLAIMED = 1, SLOT_ACTIVE = 2 };

struct guarded_range {
    _Atomic int state;
    _Atomic int poisoned; /* faults repaired in this range since it was registered */
    uintptr_t start;      /* page aligned */
    uintptr_t end;        /* exclusive */
};

static struct guarded_range ranges[VSOCKGUARD_MAX_RANGES];
static _Atomic int high_water; /* slots [0, high_water) may be active */
static _Atomic int install_state; /* 0 not installed, 1 installing, 2 installed */
static struct sigaction previous_action;
static _Atomic long sigbus_repaired; /* all repairs, for diagnostics */

static void chain_to_previous(int sig, siginfo_t *info, void *context)
{
    if (previous_action.sa_flags & SA_SIGINFO) {
        if (previous_action.sa_sigaction != NULL) {
            previous_action.sa_sigaction(sig, info, context);
            return;
        }
    } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
        previous_action.sa_handler(sig);
        return;
    }
    /* Default (or ignored, which a hardware fault cannot be): restore the default action and
     * return; the faulting instruction runs again and the kernel ends the process as it would
     * have without us. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
}

static void on_sigbus(int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    uintptr_t address = (uintptr_t)info->si_addr;
    int count = atomic_load_explicit(&high_water, memory_order_acquire);
    for (int i = 0; i < count; i++) {
        struct guarded_range *r = &ranges[i];
        if (atomic_load_explicit(&r->state, memory_order_acquire) != SLOT_ACTIVE)
            continue;
        if (address < r->start || address >= r->end)
            continue;
        /* The whole range, not just the page: the session is over, and one fault per range is
         * enough. MAP_NORESERVE: zero pages are only allocated where something writes. */
        void *p = mmap((void *)r->start, r->end - r->start, PROT_READ | PROT_WRITE,
                       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            break; /* nothing better to do than what would have happened without us */
        atomic_fetch_add_explicit(&r->poisoned, 1, memory_order_release);
        atomic_fetch_add_explicit(&sigbus_repaired, 1, memory_order_relaxed);
        errno = saved_errno;
        return;
    }
    errno = saved_errno;
    chain_to_previous(sig, info, context);
}

/* Installs the handler once (later calls return 0). Returns 0 or -errno. */
int vsockguard_install(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&install_state, &expected, 1))
        return 0;
    struct sigaction old;
    if (sigaction(SIGBUS, NULL, &old) != 0) {
        int e = errno;
        atomic_store(&install_state, 0);
        return -e;
    }
    previous_action = old;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    /* Run the way the saved handler expects to run (same stack, same restart behaviour), since
     * it is called from ours. */
    action.sa_flags = SA_SIGINFO | (old.sa_flags & (SA_ONSTACK | SA_RESTART | SA_NODEFER));
    action.sa_mask = old.sa_mask;
    if (sigaction(SIGBUS, &action, NULL) != 0) {
        int e = errno;
        atomic_store(&install_state, 0);
        return -e;
    }
    atomic_store(&install_state, 2);
    return 0;
}

/* 1 when our handler is the process's SIGBUS handler right now (someone may have replaced it). */
int vsockguard_is_active(void)
{
    struct sigaction current;
    if (atomic_load(&install_state) != 2 || sigaction(SIGBUS, NULL, &current) != 0)
        return 0;
    return (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_sigbus;
}

/* Guards [start, start + length). Returns the slot (>= 0) or -ENOSPC when the table is full. */
int vsockguard_register(void *start, size_t length)
{
    for (int i = 0; i < VSOCKGUARD_MAX_RANGES; i++) {
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&ranges[i].state, &expected, SLOT_CLAIMED))
            continue;
        ranges[i].start = (uintptr_t)start;
        ranges[i].end = (uintptr_t)start + length;
        atomic_store_explicit(&ranges[i].poisoned, 0, memory_order_relaxed);
        int seen = atomic_load(&high_water);
        while (seen < i + 1 && !atomic_compare_exchange_weak(&high_water, &seen, i + 1)) {
        }
        atomic_store_explicit(&ranges[i].state, SLOT_ACTIVE, memory_order_release);
        return i;
    }
    return -ENOSPC;
}

/* Stops guarding a slot; call before unmapping the range. */
void vsockguard_unregister(int slot)
{
    if (slot < 0 || slot >= VSOCKGUARD_MAX_RANGES)
        return;
    atomic_store_explicit(&ranges[slot].state, SLOT_CLAIMED, memory_order_release);
    ranges[slot].start = 0;
    ranges[slot].end = 0;
    atomic_store_explicit(&ranges[slot].state, SLOT_FREE, memory_order_release);
}

/* The slot's fault counter, for managed code to read without a call (valid while registered). */
_Atomic int *vsockguard_poison_counter(int slot)
{
    if (slot < 0 || slot >= VSOCKGUARD_MAX_RANGES)
        return NULL;
    return &ranges[slot].poisoned;
}

/* Faults repaired since the process started. */
long vsockguard_repaired_total(void)
{
    return atomic_load_explicit(&sigbus_repaired, memory_order_relaxed);
}
