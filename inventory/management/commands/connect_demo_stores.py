"""``manage.py connect_demo_stores``: give the demo seller one channel per sandbox store.

``make run`` seeds the sandbox stores' SQLite files, runs this, then starts the stores on fixed
loopback ports next to the web app and the workers. The stores are not listening yet when this
runs, so each one is served briefly on a free port to run the real "test connection" (the same
call the wizard makes) and the channel is saved with the fixed port the Procfile will use.
Safe to run again: existing demo channels are left alone.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Membership, Role
from channels import services
from channels.models import SalesChannel
from connectors.base import ConnectorOptions
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer, make_sandbox
from inventory.matching import create_products_from_listings, refresh_listings

DEMO_CHANNEL_NAMES = {
    "opencart": "Demo OpenCart store",
    "xcart": "Demo X-Cart store",
    "threedcart": "Demo 3DCart store",
}


class Command(BaseCommand):
    help = "Connect the demo seller to the sandbox stores started by `make run`."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", default="demo@example.com")
        parser.add_argument("--sandbox-dir", default=str(settings.BASE_DIR / "var" / "sandbox"))
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--opencart-port", type=int, default=8701)
        parser.add_argument("--opencart-family", default="4.0")
        parser.add_argument("--xcart-port", type=int, default=8702)
        parser.add_argument("--threedcart-port", type=int, default=8703)

    def handle(self, *args: Any, **options: Any) -> None:
        membership = (
            Membership.objects.filter(user__email__iexact=options["email"], role=Role.OWNER)
            .select_related("account", "user")
            .first()
        )
        if membership is None:
            raise CommandError(f"No seller {options['email']}: run create_demo_seller first.")
        stores = {
            "opencart": ({"family": options["opencart_family"]}, options["opencart_port"]),
            "xcart": ({}, options["xcart_port"]),
            "threedcart": (
                {
                    "public_key": settings.THREEDCART_PUBLIC_KEY,
                    "private_key": settings.THREEDCART_PRIVATE_KEY,
                },
                options["threedcart_port"],
            ),
        }
        for platform, (sandbox_options, port) in stores.items():
            name = DEMO_CHANNEL_NAMES[platform]
            if SalesChannel.objects.live().filter(account=membership.account, name=name).exists():
                self.stdout.write(f"  {name}: already connected")
                continue
            db_path = f"{options['sandbox_dir']}/{platform}.db"
            app = make_sandbox(platform, db_path=db_path, **sandbox_options)
            with SandboxServer(app, host=options["host"]) as probe:
                connector = build_connector(
                    platform,
                    app.connector_store_url(),
                    app.connector_credentials(),
                    app.connector_settings(),
                    options=ConnectorOptions(allow_private_hosts=True, **app.connector_options()),
                )
                facts = connector.test_connection()
                fixed_url = f"http://{options['host']}:{port}"
                store_url = app.connector_store_url().replace(probe.url, fixed_url)
                channel = services.add_channel(
                    membership.account,
                    actor=membership.user,
                    platform=platform,
                    name=name,
                    store_url=store_url,
                    credentials=app.connector_credentials(),
                    settings=app.connector_settings() | {"order_interval_minutes": 1},
                    store_facts=facts,
                )
                # The seller's product master starts from what the stores sell (the wizard's
                # "Add these to my products"), so a stock change in Storelink reaches the stores.
                refresh_listings(channel, connector)
                added = create_products_from_listings(channel, actor=membership.user)
                connector.close()
            self.stdout.write(f"  {name}: connected ({channel.store_url}), {added.created} products added")
