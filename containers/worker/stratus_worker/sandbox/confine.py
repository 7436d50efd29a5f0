"""The kernel layers a sandboxed child applies to itself before it runs user code (Linux only).

Each `apply_*` returns what it did: "applied", or "missing: <why>" where the kernel or the privileges
do not allow it. `confine()` applies them in the one order that works:

1. a network namespace with no interfaces (unshare CLONE_NEWNET; needs root or a user namespace),
2. rlimits: CPU seconds, address space, processes, file size, open files, no core dumps,
3. an unprivileged uid/gid with no supplementary groups (when started as root),
4. PR_SET_NO_NEW_PRIVS (no setuid binaries, and what Landlock and seccomp require),
5. Landlock: read-only access to the Python installation and model files, read-write access to the
   run's fresh work directory only, no TCP bind/connect, no abstract unix sockets or signals outside,
6. a seccomp deny-list (network sockets, exec, fork, ptrace, mount, namespaces, bpf, keyctl, ...).

Landlock and seccomp go through ctypes (the Landlock system calls directly, libseccomp for the BPF),
so nothing beyond libseccomp2 (Debian's, present in python:*-slim images) is needed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import platform
import resource
from collections.abc import Iterable
from dataclasses import dataclass, field

APPLIED = "applied"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# Syscall numbers are the same on x86_64 and aarch64 for these (the generic table since 5.x).
_NR_LANDLOCK_CREATE_RULESET = 444
_NR_LANDLOCK_ADD_RULE = 445
_NR_LANDLOCK_RESTRICT_SELF = 446

CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 30
    memory_mb: int = 2048  # address space on top of what the warm runner has mapped
    processes: int = 64  # threads count: torch's pool lives within it
    file_mb: int = 16  # any one file written (stdout included): "print gigabytes" stops here
    open_files: int = 128


@dataclass
class Plan:
    """What a child applies: the uid to become, the paths it may read and the one it may write."""

    workdir: str
    readable: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=lambda: ["/dev/null", "/dev/zero", "/dev/urandom"])
    uid: int | None = None
    gid: int | None = None
    limits: Limits = field(default_factory=Limits)
    network_namespace: bool = True
    why_no_uid: str = "the runner is not root, so the child keeps the runner's uid"


def _errno_text() -> str:
    err = ctypes.get_errno()
    return f"{errno.errorcode.get(err, err)} ({os.strerror(err)})"


# --- network namespace ----------------------------------------------------------------------------


def apply_netns() -> str:
    if _libc.unshare(CLONE_NEWNET) != 0:
        return f"missing: unshare(CLONE_NEWNET) failed: {_errno_text()}"
    return APPLIED


# --- rlimits ---------------------------------------------------------------------------------------


def _mapped_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def apply_rlimits(limits: Limits) -> str:
    mb = 1024 * 1024
    # The forked runner has torch mapped already: the memory limit is headroom over that.
    address_space = _mapped_bytes() + limits.memory_mb * mb
    wanted = {
        resource.RLIMIT_CPU: (limits.cpu_s, limits.cpu_s + 1),  # SIGXCPU, then SIGKILL a second later
        resource.RLIMIT_AS: (address_space, address_space),
        resource.RLIMIT_NPROC: (limits.processes, limits.processes),
        resource.RLIMIT_FSIZE: (limits.file_mb * mb, limits.file_mb * mb),
        resource.RLIMIT_NOFILE: (limits.open_files, limits.open_files),
        resource.RLIMIT_CORE: (0, 0),
    }
    failed = []
    for which, value in wanted.items():
        try:
            resource.setrlimit(which, value)
        except (ValueError, OSError) as e:
            failed.append(f"{which}: {e}")
    return APPLIED if not failed else f"missing: {'; '.join(failed)}"


# --- unprivileged user ----------------------------------------------------------------------------


def apply_user(uid: int | None, gid: int | None, why_not: str) -> str:
    if uid is None or gid is None:
        return f"missing: {why_not}"
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        return f"missing: could not drop to uid {uid}: {e}"
    return APPLIED


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_PR_CAPBSET_DROP = 24


def apply_drop_capabilities() -> str:
    """No capabilities left, in any set (what a uid 0 that could not drop its uid still holds)."""
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability this kernel knows
    header = _CapHeader(version=0x20080522, pid=0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        return f"missing: capset failed: {_errno_text()}"
    return APPLIED


def readable_by(uid: int, gid: int, paths: Iterable[str]) -> list[str]:
    """The paths that `uid` could not reach for reading through ordinary permissions (an ancestor
    it cannot search, e.g. a Python installed under /root)."""
    return [blocked for path in paths if (blocked := _blocked(uid, gid, path, read=True))]


def searchable_by(uid: int, gid: int, paths: Iterable[str]) -> list[str]:
    """The directories that `uid` could not pass through (e.g. a base directory under a mode-0700
    pytest or mkdtemp directory): its run directories inside would be out of its reach."""
    return [blocked for path in paths if (blocked := _blocked(uid, gid, path, read=False))]


def _blocked(uid: int, gid: int, path: str, *, read: bool) -> str:
    current = os.path.realpath(path)
    chain = [current]
    while current != os.path.dirname(current):
        current = os.path.dirname(current)
        chain.append(current)
    for position, part in enumerate(chain):
        try:
            st = os.stat(part)
        except OSError:
            return ""
        searched = position or not read  # an ancestor, or a directory only passed through
        need = 0o1 if searched else (0o5 if os.path.isdir(part) else 0o4)
        if st.st_uid == uid:
            mode = (st.st_mode >> 6) & 7
        elif st.st_gid == gid:
            mode = (st.st_mode >> 3) & 7
        else:
            mode = st.st_mode & 7
        if mode & need != need:
            return f"{path} ({part} is mode {oct(st.st_mode & 0o777)})"
    return ""


def apply_no_new_privs() -> str:
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"missing: prctl(PR_SET_NO_NEW_PRIVS) failed: {_errno_text()}"
    return APPLIED


# --- Landlock ------------------------------------------------------------------------------------

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_ABI1_ALL = (1 << 13) - 1
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_RULE_PATH_BENEATH = 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where it is absent or disabled."""
    version = _libc.syscall(_NR_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def apply_landlock(readable: Iterable[str], writable: Iterable[str], devices: Iterable[str]) -> str:
    abi = landlock_abi()
    if abi < 1:
        return f"missing: Landlock is not available: {_errno_text()}"
    handled = _FS_ABI1_ALL
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    attr = _RulesetAttr(handled_access_fs=handled)
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP  # no rule: no TCP at all
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        size = 24
    fd = _libc.syscall(_NR_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if fd < 0:
        return f"missing: landlock_create_ruleset failed: {_errno_text()}"
    read_only = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    device_rights = _FS_READ_FILE | _FS_WRITE_FILE | (_FS_IOCTL_DEV if abi >= 5 else 0)
    try:
        rules = [(p, read_only) for p in readable] + [(p, handled) for p in writable]
        rules += [(p, device_rights) for p in devices]
        for path, rights in rules:
            try:
                path_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path that does not exist here grants nothing
            try:
                if not os.path.isdir(path):
                    rights &= _FILE_RIGHTS
                rule = _PathBeneathAttr(allowed_access=rights & handled, parent_fd=path_fd)
                if _libc.syscall(_NR_LANDLOCK_ADD_RULE, fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                    return f"missing: landlock_add_rule({path}) failed: {_errno_text()}"
            finally:
                os.close(path_fd)
        if _libc.syscall(_NR_LANDLOCK_RESTRICT_SELF, fd, 0) != 0:
            return f"missing: landlock_restrict_self failed: {_errno_text()}"
    finally:
        os.close(fd)
    return f"{APPLIED} (ABI {abi})"


# --- seccomp ------------------------------------------------------------------------------------

_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_MASKED_EQ = 7


def _scmp_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


# Denied with EPERM. A deny-list, because numpy and torch use a wide, changing set of system calls.
DENIED_SYSCALLS = (
    # network: no sockets of any family (socketpair stays: it reaches no one)
    "socket",
    # new programs and processes: threads (clone with CLONE_THREAD) stay allowed
    "execve", "execveat", "fork", "vfork",
    # other processes' memory and descriptors
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    # filesystems and namespaces
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "name_to_handle_at",
    "open_by_handle_at", "mknod", "mknodat",
    # the kernel's own facilities
    "bpf", "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "fanotify_init", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct",
    "quotactl", "syslog", "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "sethostname", "setdomainname", "lookup_dcookie", "uselib", "personality",
)  # fmt: skip


@functools.cache
def _libseccomp() -> ctypes.CDLL | None:
    # dlopen by soname: find_library would run ldconfig and gcc in subprocesses.
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        name = ctypes.util.find_library("seccomp")
        if name is None:
            return None
        lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)
    ]  # fmt: skip
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


@functools.cache
def seccomp_filter() -> tuple[ctypes.CDLL, int] | str:
    """The deny-list filter, built once per process (the warm runner builds it before forking): each
    child only loads it. A string says why there is none."""
    lib = _libseccomp()
    if lib is None:
        return "missing: libseccomp.so.2 is not installed (apt-get install libseccomp2)"
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        return "missing: seccomp_init failed"
    failure = _add_rules(lib, ctx)
    if failure:
        lib.seccomp_release(ctx)
        return failure
    return lib, ctx


def apply_seccomp() -> str:
    built = seccomp_filter()
    if isinstance(built, str):
        return built
    lib, ctx = built
    rc = lib.seccomp_load(ctx)
    if rc != 0:
        return f"missing: seccomp_load failed ({rc})"
    return APPLIED


def _add_rules(lib: ctypes.CDLL, ctx: int) -> str | None:
    deny = _scmp_errno(errno.EPERM)
    for name in DENIED_SYSCALLS:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr == -1:  # not a system call on this architecture
            continue
        rc = lib.seccomp_rule_add_array(ctx, deny, nr, 0, None)
        if rc != 0:
            return f"missing: seccomp rule for {name} failed ({rc})"
    # clone without CLONE_THREAD is a new process: denied. clone3 hides its flags in memory that
    # a filter cannot read, so it answers ENOSYS and glibc falls back to clone.
    clone = lib.seccomp_syscall_resolve_name(b"clone")
    not_thread = (_ArgCmp * 1)(_ArgCmp(0, _SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0))
    if lib.seccomp_rule_add_array(ctx, deny, clone, 1, not_thread) != 0:
        return "missing: seccomp rule for clone failed"
    clone3 = lib.seccomp_syscall_resolve_name(b"clone3")
    if clone3 != -1 and lib.seccomp_rule_add_array(ctx, _scmp_errno(errno.ENOSYS), clone3, 0, None) != 0:
        return "missing: seccomp rule for clone3 failed"
    return None


LAYERS = ("network_namespace", "rlimits", "user", "capabilities", "no_new_privs", "landlock", "seccomp")


def confine(plan: Plan) -> dict[str, str]:
    """Apply every layer to this process, in order; the report says which applied and which are
    missing (and why). Irreversible: call it in the forked child only."""
    report: dict[str, str] = {}
    if platform.system() != "Linux":
        return dict.fromkeys(LAYERS, "missing: not Linux")
    report["network_namespace"] = apply_netns() if plan.network_namespace else "missing: disabled"
    report["rlimits"] = apply_rlimits(plan.limits)
    report["user"] = apply_user(plan.uid, plan.gid, plan.why_no_uid)
    report["capabilities"] = apply_drop_capabilities()
    report["no_new_privs"] = apply_no_new_privs()
    report["landlock"] = apply_landlock(plan.readable, [plan.workdir], plan.devices)
    report["seccomp"] = apply_seccomp()
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # not ptrace-able or readable through /proc by peers
    return report


def missing(report: dict[str, str]) -> list[str]:
    return [layer for layer, state in report.items() if not state.startswith(APPLIED)]
