"""Where a download URL is fetched from: the URL itself, or the same host and path under a local URL prefix.

With ``AMAD_FETCH_URL_PREFIX=http://127.0.0.1:8765`` every request of the downloader (manifest URLs, Google Drive
folder listings, Drive's confirm pages and file downloads) goes to ``<prefix>/<host>/<path>?<query>`` instead of
``https://<host>/<path>?<query>``. The rehearsal (``amad_suite.rehearsal``) serves miniature copies of the manifest's
files on 127.0.0.1 this way, so the manifest keeps its real URLs; a site cache of the upstream hosts laid out by
host can be used the same way. Unset (the default), URLs are fetched as they are.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

PREFIX_ENV = "AMAD_FETCH_URL_PREFIX"


def url_prefix() -> str:
    """The prefix every download is routed through ($AMAD_FETCH_URL_PREFIX without a trailing slash), or ""."""
    return os.environ.get(PREFIX_ENV, "").strip().rstrip("/")


def routed(url: str) -> str:
    """``url`` as it is fetched: ``<prefix>/<host>/<path>?<query>`` when a prefix is set, else ``url`` itself."""
    prefix = url_prefix()
    parts = urlsplit(url)
    if not prefix or url.startswith(prefix + "/") or not parts.netloc:
        return url
    return f"{prefix}/{parts.netloc}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


def unrouted(url: str) -> str:
    """The original URL of a routed one (https assumed), so that relative links on a routed page resolve against
    the real host; other URLs are returned as they are."""
    prefix = url_prefix()
    if not prefix or not url.startswith(prefix + "/"):
        return url
    return "https://" + url[len(prefix) + 1 :]
