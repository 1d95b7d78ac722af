"""``python -m safeadapt.cli`` (e.g. under ``accelerate launch``)."""

from safeadapt.cli import main

main()
