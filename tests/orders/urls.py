"""The project's URLs plus the orders routes, for as long as ``config/urls.py`` does not mount them.

Once ``config/urls.py`` includes ``orders.urls`` and ``orders.api_urls`` this adds nothing.
"""

from typing import Any

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns


def _mounted(module: str, patterns: list[Any]) -> bool:
    return any(getattr(pattern, "urlconf_name", None) == module for pattern in patterns) or any(
        getattr(getattr(pattern, "urlconf_module", None), "__name__", "") == module for pattern in patterns
    )


urlpatterns = list(project_urlpatterns)
if not _mounted("orders.api_urls", urlpatterns):
    urlpatterns.insert(0, path("api/v1/", include("orders.api_urls")))
if not _mounted("orders.urls", urlpatterns):
    urlpatterns.insert(0, path("", include("orders.urls")))
