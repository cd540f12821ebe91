"""Transport options for Celery's ``filesystem://`` broker, built in one place.

Settings, the end-to-end tests and the benchmarks all point worker, beat and the sending process at
the same folders. kombu keeps its exchange table under ``control_folder``, which defaults to a
relative ``control/`` in the current working directory; leaving it out anywhere litters the checkout
(or whatever directory a process happens to run in), so every caller goes through this function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def filesystem_transport_options(folder: Path) -> dict[str, Any]:
    """Options keeping every file of the broker under ``folder``, which is created if missing.

    Messages wait in ``queue/`` (written and read by the same folder, so any process that sends also
    consumes), consumed messages are not kept (``processed/`` only exists because kombu wants it),
    and ``control/`` holds the exchange bindings.
    """
    folders = {name: folder / name for name in ("queue", "processed", "control")}
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
