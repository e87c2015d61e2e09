"""Reading files that someone else dropped (blocking): regular files only, bounded, never blocking.

The inbox and the spool are written by other processes, so anything can sit there: a FIFO (an
`open` would block until a writer comes), a device or a symlink to one (`/dev/zero` reads
forever), a directory, a file still being written. `inspect` looks with `lstat` (a symlink is
never followed) and `read_regular` opens with `O_NONBLOCK | O_NOFOLLOW`, checks the opened
descriptor is the same regular file, and reads at most `max_bytes + 1` bytes.

`lease_says_written(path)` tells whether some process has the file open for writing (a read
lease cannot be taken then: microseconds); where a lease cannot tell, `open_writers(folder)`
names the entries some process has open for writing from Linux `/proc` (milliseconds; best
effort: processes of other users are invisible without privileges). Either way a file written
in place is left until its writer closes it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from messages.errors import InputError

_KINDS = (
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


MAX_INT_DIGITS = 64
"""A JSON integer with more digits is refused before Python converts it (a 5,000-digit one
used to raise past the parser)."""
MAX_DEPTH = 32
"""Arrays and objects nested deeper than this are refused (deeper ones used to crash the
parser's recursion)."""


class JSONLimitError(InputError):
    """A JSON text is invalid or breaks a bound (integer digits, nesting depth)."""


class NotRegularError(InputError):
    """The entry is not a regular file (a symlink, a directory, a FIFO, a device, a socket)."""

    def __init__(self, source: str, kind: str, detail: str = "") -> None:
        super().__init__(source, f"not a regular file ({kind})", detail)
        self.kind = kind


class TooLargeError(InputError):
    """The file is larger than the limit; it was not read (or read only up to the limit)."""

    def __init__(self, source: str, limit: int, size: int) -> None:
        super().__init__(source, f"file is larger than {limit} bytes", f"{size} bytes (not read)")
        self.limit = limit
        self.size = size


@dataclass(frozen=True)
class Entry:
    """What `lstat` says of one directory entry."""

    path: Path
    kind: str
    """`file` for a regular file, else what it is (`symlink`, `directory`, `FIFO`, ...)."""
    size: int
    mtime_ns: int
    inode: int

    @property
    def regular(self) -> bool:
        """True for a regular file (the only kind ever opened)."""
        return self.kind == "file"


def kind_of(mode: int) -> str:
    """`file`, or the name of the non-regular kind of a `st_mode`."""
    if stat.S_ISREG(mode):
        return "file"
    for test, name in _KINDS:
        if test(mode):
            return name
    return "unknown file type"


def inspect(path: Path) -> Entry:
    """`lstat` one entry (a symlink is described, not followed).

    Raises:
        FileNotFoundError: it is gone.
    """
    st = os.lstat(path)
    return Entry(path, kind_of(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ino)


def describe(entry: Entry) -> str:
    """A reason's detail for a non-regular entry (a symlink's target is named, not read)."""
    if entry.kind == "symlink":
        try:
            return f"symlink to {os.readlink(entry.path)!r}; symlinks are never followed"
        except OSError as exc:
            return f"symlink (unreadable: {exc.strerror})"
    return f"a {entry.kind}; only regular files are read"


def read_regular(path: Path, max_bytes: int, *, source: str | None = None) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them.

    Raises:
        NotRegularError: `path` is (or was swapped for) something other than a regular file.
        TooLargeError: the file holds more than `max_bytes` bytes.
        FileNotFoundError: it is gone.
    """
    name = source or path.name
    entry = inspect(path)
    if not entry.regular:
        raise NotRegularError(name, entry.kind, describe(entry))
    if entry.size > max_bytes:
        raise TooLargeError(name, max_bytes, entry.size)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: swapped for a symlink between lstat and open
            raise NotRegularError(name, "symlink", "replaced by a symlink while read") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_ino != entry.inode:
            raise NotRegularError(name, kind_of(st.st_mode), "replaced while being read")
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise TooLargeError(name, max_bytes, max(total, st.st_size))
        return b"".join(chunks)
    finally:
        os.close(fd)


def lease_says_written(path: Path) -> bool | None:
    """Whether some process has `path` open for writing, by a read-lease probe (microseconds);
    None when the lease cannot tell (another user's file, a filesystem without leases).

    `F_SETLEASE(F_RDLCK)` fails with EAGAIN while any descriptor of the file is open for
    writing; taken, it is dropped at once. A writer opening the file in that instant makes the
    kernel signal the lease holder: SIGURG is asked for (F_SETSIG), whose default is to ignore.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except BlockingIOError:
            return True
        except OSError:
            return None
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


def open_writers(folder: Path) -> set[str]:
    """Names of the entries of `folder` some visible process has open for writing.

    Reads `/proc/<pid>/fd` (a few ms for a few hundred processes); empty where there is no
    `/proc`. A process that exits or closes meanwhile is skipped.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    prefix = str(folder.resolve()) + os.sep
    names: set[str] = set()
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if not target.startswith(prefix) or os.sep in target[len(prefix) :]:
                continue
            if _writable(pid, fd):
                names.add(target[len(prefix) :])
    return names


def _writable(pid: str, fd: str) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("flags:"):
                    flags = int(line.split()[1], 8)
                    return bool(flags & (os.O_WRONLY | os.O_RDWR))
    except (OSError, ValueError):
        return False
    return False


class _IntegerTooLongError(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(f"{len(text)} digits: {text[:20]}...")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _IntegerTooLongError(text)
    return int(text)


def _depth(value: Any) -> int:
    """How deeply `value` nests arrays and objects (a scalar: 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            level += 1
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, level) for child in item if isinstance(child, dict | list))
    return deepest


def load_json(text: str, name: str) -> Any:
    """`json.loads` with every bound checked: integer digits, nesting depth.

    Raises:
        JSONLimitError: not valid JSON, an integer over MAX_INT_DIGITS digits, nesting deeper
            than MAX_DEPTH.
    """
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        detail = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise JSONLimitError(name, "file is not valid JSON", detail) from exc
    except _IntegerTooLongError as exc:
        rule = f"JSON integer longer than {MAX_INT_DIGITS} digits"
        raise JSONLimitError(name, rule, str(exc)) from exc
    except RecursionError as exc:
        rule = f"JSON nested deeper than {MAX_DEPTH} levels"
        raise JSONLimitError(name, rule, "the parser's recursion limit was reached") from exc
    except ValueError as exc:  # e.g. Python's own int() digit limit
        raise JSONLimitError(name, "file is not valid JSON", str(exc)[:200]) from exc
    if _depth(data) > MAX_DEPTH:
        rule = f"JSON nested deeper than {MAX_DEPTH} levels"
        raise JSONLimitError(name, rule, f"more than {MAX_DEPTH} levels of arrays/objects")
    return data
