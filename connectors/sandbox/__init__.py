"""Wire-faithful stand-ins for the stores Storelink talks to (tests, benchmarks, the demo)."""

from __future__ import annotations

from typing import Any

from connectors.sandbox.core import Faults, SandboxApp, SandboxServer

SANDBOX_PLATFORMS = ("opencart", "xcart", "threedcart")


def make_sandbox(
    platform: str, *, db_path: str = ":memory:", faults: Faults | None = None, **options: Any
) -> SandboxApp:
    """Build the sandbox store of ``platform``; ``options`` go to the platform's constructor.

    Imports stay inside the branches so a process that serves one platform does not pay for the
    others, and a platform module with a problem does not take the rest down.
    """
    if platform == "opencart":
        from connectors.sandbox.opencart import OpenCartSandbox

        return OpenCartSandbox(db_path=db_path, faults=faults, **options)
    if platform == "xcart":
        from connectors.sandbox.xcart import XCartSandbox

        return XCartSandbox(db_path=db_path, faults=faults, **options)
    if platform == "threedcart":
        from connectors.sandbox.threedcart import ThreeDCartSandbox

        return ThreeDCartSandbox(db_path=db_path, faults=faults, **options)
    raise ValueError(f"unknown sandbox platform {platform!r}")


__all__ = ["SANDBOX_PLATFORMS", "Faults", "SandboxApp", "SandboxServer", "make_sandbox"]
