"""``safeadapt`` under ``accelerate launch``, with every file write logged per process: each
process appends the paths it wrote (``os.replace`` targets, ``Path.write_text`` / ``write_bytes``)
to ``$PROBE_DIR/writes-<rank>.txt``, then runs the command line as usual."""

import os
import pathlib
import sys


def _log(path) -> None:
    rank = os.environ.get("RANK", "0")
    with open(os.path.join(os.environ["PROBE_DIR"], f"writes-{rank}.txt"), "a") as f:
        f.write(f"{os.fspath(path)}\n")


def _wrap(owner, name, target_of):
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        _log(target_of(*args))
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


_wrap(os, "replace", lambda src, dst, *a: dst)
_wrap(pathlib.Path, "write_text", lambda self, *a: self)
_wrap(pathlib.Path, "write_bytes", lambda self, *a: self)

if __name__ == "__main__":
    from safeadapt.cli import main

    sys.argv = ["safeadapt", *sys.argv[1:]]
    main()
