"""Integration tests run the real emulator over loopback (fixtures from vecml_async.testing)."""

pytest_plugins = ["vecml_async.testing"]
