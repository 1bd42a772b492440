"""The last module the sandbox's forkserver preloads: the caller's main script, then a frozen heap.

A child started from a forkserver re-runs the parent's main *script* (``__main__``
with a file and no module spec, such as the ``copilot`` console script) unless the
forkserver already has it loaded. Python 3.11's forkserver is meant to preload it
but is never given its path (``ensure_running`` keeps only ``main_path`` from the
preparation data, which names it ``init_main_from_path``), so each tool call would
import the whole CLI, engine and LLM client again, about 2 s. The sandbox puts the
path in ``MAIN_PATH_ENV`` before it starts the forkserver.

Then ``gc.freeze()``: a child's garbage collections skip every object the forkserver
loaded, so they do not touch (and copy) the pages those objects live on. A call
from a process that has imported the whole application went from 0.4 s to 0.12 s.
"""

from __future__ import annotations

import gc
import os
import sys
from contextlib import suppress
from multiprocessing import process, spawn

from tools.sandbox_child import MAIN_PATH_ENV, warm_up


def _load_main(path: str) -> None:
    sys.path.insert(0, os.path.dirname(path))  # as when the script was started: its folder comes first
    current = process.current_process()
    current._inheriting = True  # type: ignore[attr-defined]  # what the forkserver itself does for main_path
    try:
        spawn.import_main_path(path)
    finally:
        del current._inheriting  # type: ignore[attr-defined]


if os.environ.get(MAIN_PATH_ENV):
    with suppress(BaseException):  # a script that cannot be re-run: each child runs it, as without this module
        _load_main(os.environ[MAIN_PATH_ENV])
warm_up()
gc.freeze()
