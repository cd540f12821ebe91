"""The project's URLs plus the inventory routes, for as long as ``config/urls.py`` does not mount them.

``config/urls.py`` belongs to the foundation; until it includes ``inventory.urls`` and
``inventory.api_urls`` the inventory tests run against this superset. Once it does, this adds
nothing.
"""

from typing import Any

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns


def _mounted(module: str, patterns: list[Any]) -> bool:
    return any(getattr(pattern, "urlconf_name", None) == module for pattern in patterns) or any(
        getattr(getattr(pattern, "urlconf_module", None), "__name__", "") == module for pattern in patterns
    )


urlpatterns = list(project_urlpatterns)
if not _mounted("inventory.api_urls", urlpatterns):
    urlpatterns.insert(0, path("api/v1/", include("inventory.api_urls")))
if not _mounted("inventory.urls", urlpatterns):
    urlpatterns.append(path("", include("inventory.urls")))
