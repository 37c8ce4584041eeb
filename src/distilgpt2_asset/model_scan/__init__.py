"""The model scan: ProtectAI's modelscan plus our structural rules, over an MLflow or Hugging Face folder.

`scan_model(folder)` returns a ScanReport: one Finding (file, rule, severity, message) per
problem. build, register and publish refuse a folder with a finding of MEDIUM or above, and
register and publish record the scan's evidence (tools, rules, verdict, content digest) as
version properties.
"""

from .findings import SCAN_PROPERTIES, Finding, ScanReport, Severity
from .scanner import scan_model

__all__ = ["SCAN_PROPERTIES", "Finding", "ScanReport", "Severity", "scan_model"]
