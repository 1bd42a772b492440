"""A sandbox child in a fresh interpreter: ``python -m tools._spawned_child ARGS`` (``Sandbox`` with
``start_method="spawn"``), for a caller whose own memory no child may share (a Ray worker).

This process plays the forkserver's part for one call: before any limit or layer is in force it
imports only what every call needs (pandas and Parquet, and joblib, which cannot set up its locks
once confined), then forks the child that runs :func:`tools.sandbox_child.main`. The fork matters:
those imports start threads, and a user namespace is refused to a process that has more than one.
The tool's own modules load inside the sandbox, as a plugin's do in a forkserver child; their thread
pools are sized by the environment this process starts with (``Sandbox``). It ends as the child did.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from multiprocessing.connection import Connection

from tools import child_process, sandbox_child

PRELOAD = ("pandas", "pyarrow.parquet", "joblib")


def run(argument: str) -> None:
    workdir, limits, progress_fd, protected = json.loads(argument)
    child_process.die_with_parent()
    os.setsid()  # the caller stops this process's group; the child dies with this process
    for name in PRELOAD:
        importlib.import_module(name)
    sandbox_child.warm_up()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sandbox_child.main(workdir, limits, Connection(progress_fd, readable=False), tuple(protected))
            code = 0
        finally:
            os._exit(code)
    os.close(progress_fd)  # the child's end alone: the caller reads to the end of its progress
    child_process.exit_as(os.waitpid(pid, 0)[1])


if __name__ == "__main__":
    run(sys.argv[1])
