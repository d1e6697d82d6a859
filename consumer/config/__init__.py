"""The settings: environment variables (and SETTINGS_FILE), checked before anything connects."""

from __future__ import annotations

from consumer.config.settings import Settings, environment_help, load_settings

__all__ = ["Settings", "environment_help", "load_settings"]
