"""Platform adapters: translate platform payloads in, `Message`s out. Only they import platform SDKs."""
