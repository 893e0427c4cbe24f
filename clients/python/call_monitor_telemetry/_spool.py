"""Appending envelope-v1 lines to call_monitor's spool.

The same writer protocol as the hook (`src/spool/mod.rs`):

1. open the hour's file `hook-YYYYMMDDHH.jsonl` (UTC) with
   O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW, mode 0600;
2. flock(LOCK_SH|LOCK_NB); if that would block, the daemon is deleting this
   very file: switch to a fresh uniquely named file;
3. check the path still names the opened inode (and it is still linked);
   if not, start over;
4. one write(2) of whole lines; close.

It never blocks and never raises: a spool that is missing, not private, or
not writable makes :func:`append` return False.
"""

import errno
import fcntl
import os
import stat
import uuid
from datetime import datetime, timezone

MAX_ATTEMPTS = 16
MAX_LINE = 1024 * 1024


def private_dir(spool):
    """Whether `spool` is a real directory owned by this user, mode 0700-ish
    (the daemon refuses any other; a line there would never be read)."""
    try:
        st = os.lstat(spool)
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.geteuid()
        and st.st_mode & 0o077 == 0
    )


def hour_file(spool, now):
    return os.path.join(spool, "hook-%s.jsonl" % now.strftime("%Y%m%d%H"))


def fallback_file(spool, now):
    return os.path.join(
        spool, "hook-%s-%s.jsonl" % (now.strftime("%Y%m%d%H"), uuid.uuid4().hex)
    )


def append(spool, data, now=None):
    """Appends `data` (complete lines, each ending in a newline) in one
    write(2). Returns whether it was written."""
    if not data.endswith(b"\n") or not private_dir(spool):
        return False
    now = now or datetime.now(timezone.utc)
    path = hour_file(spool, now)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    for _ in range(MAX_ATTEMPTS):
        try:
            fd = os.open(path, flags, 0o600)
        except OSError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    path = fallback_file(spool, now)
                    continue
                return False
            opened = os.fstat(fd)
            if opened.st_nlink == 0:
                continue
            try:
                named = os.lstat(path)
            except FileNotFoundError:
                continue
            if (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
                continue
            return os.write(fd, data) == len(data)
        except OSError:
            return False
        finally:
            os.close(fd)
    return False
