"""Onsite: a practice floor for machine-learning interviews on Discord, Slack and the terminal."""

__version__ = "0.1.0"
