"""Files the relay makes on disk, private to the user it runs as.

The instance folder and the SQLite database hold stored conversations in
plain text and the development encryption key: a folder made here is 0700
and the database file 0600, whatever the umask (one of 022 would make them
readable by every local user). What exists already keeps its mode: an
operator may have chosen it (a backup group, systemd's StateDirectory).
"""

import os


def private_folder(path):
    """Make the folder `path` (and missing parents) unless it exists; the
    folder itself is made 0700."""
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        return
    # makedirs' mode passes through the umask, which may take bits off (or,
    # for a parent, not give any): the folder's own mode is set outright.
    os.chmod(path, 0o700)


def private_file(path):
    """Make the empty file `path`, 0600, unless it exists (SQLite reads an
    empty file as an empty database, and makes its -wal and -shm files with
    the database file's mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def world_readable(path):
    """Whether every user of the machine may read the existing file `path`."""
    try:
        return bool(os.stat(path).st_mode & 0o004)
    except OSError:
        return False
