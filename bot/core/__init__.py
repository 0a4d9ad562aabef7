"""Platform-free domain: imports nothing from discord or slack_bolt."""
