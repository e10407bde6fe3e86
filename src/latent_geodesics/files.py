"""Writing files safely: every file the package writes goes through here.

A file appears whole or not at all: it is written to a temporary created
exclusively beside it (tempfile.mkstemp: a new name, O_EXCL, so a planted file or
symbolic link at a predictable name is never opened) and renamed into place
(os.replace, atomic on POSIX). A target that is a symbolic link is refused: the
rename would replace the link, not the file it points to, which is not what
whoever made the link meant. Logs, which other processes append to while they
run, are opened without following a link (O_NOFOLLOW).
"""
import contextlib
import os
import tempfile

# The process's umask, read once at import: mkstemp creates its file 0600, and a
# written file gets the mode an ordinary open() would have given it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class SymlinkTargetError(OSError):
    """A file to be written is a symbolic link."""


def refuse_symlink(path):
    """SymlinkTargetError naming the path when it is a symbolic link."""
    if os.path.islink(path):
        raise SymlinkTargetError(
            "%s is a symbolic link; files are written only as regular files (the link "
            "would be replaced, not the file it points to): remove the link or give the "
            "real path" % path)


def atomic_write(path, writer, mode="wb"):
    """Write `path` by writer(f), f an open file object (mode "wb" or "w"); the file
    appears complete or not at all, and nothing existing is followed or overwritten
    in place. Returns path."""
    refuse_symlink(path)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            writer(f)
            if not f.closed:   # some writers (rosbag) close the file they were given
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def open_log(path, append=False):
    """A text log opened for writing (truncated, or appended to), never through a
    symbolic link: for output that other processes write while it grows."""
    refuse_symlink(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if os.path.islink(path):   # planted between the check and the open
            refuse_symlink(path)
        raise e
    return os.fdopen(fd, "a" if append else "w")
