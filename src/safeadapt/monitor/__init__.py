"""After deployment: watch an exported model on incoming inputs (``safeadapt monitor``).

``safeadapt export`` writes a reference (``monitor/``: a sample of ID-validation features,
logits and what was fitted on them); :class:`Monitor` compares windows of production inputs
with it -- embedding drift of the pretrained and the adapted backbone, prediction drift, the
OOD detector's rate, accuracy estimated without labels (ATC, DoC) and, where labels came back,
accuracy -- with alerts whose false-alarm rate holds over a declared horizon of windows.
"""

from safeadapt.monitor.monitor import Monitor
from safeadapt.monitor.reference import Reference, build_reference
from safeadapt.monitor.result import MonitorResult
from safeadapt.monitor.window import AlertPolicy, WindowResult

__all__ = [
    "AlertPolicy",
    "Monitor",
    "MonitorResult",
    "Reference",
    "WindowResult",
    "build_reference",
]
