"""Capture: agent parsers (one module per agent) and the capture run."""

from .agents import AGENTS, agent_module
from .run import CaptureReport, capture_paths

__all__ = ["AGENTS", "agent_module", "CaptureReport", "capture_paths"]
