#!/usr/bin/env python
"""Django's command-line entry point for Storelink."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.startup import refuse_insecure_production

    # Commands run against production data (migrate, createsuperuser ...) must not silently use
    # the embedded development keys; the dev server and tests run with DEBUG on or via pytest.
    # collectstatic touches no data and runs while an image is built, before any secret exists.
    if sys.argv[1:2] != ["collectstatic"]:
        refuse_insecure_production()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
