"""Google Drive without a browser: the virus-scan interstitial page and files that only live in a shared folder.

A large Drive file answers its download URL with an HTML page ("Google Drive can't scan this file for viruses")
holding a form (``id="download-form"``) whose action and hidden inputs (id, export, confirm, uuid) make the real
download URL; older pages carry a ``/uc?export=download&confirm=...`` link instead. :func:`confirm_url` turns such a
page into the URL to retry; Drive's error pages (quota exceeded, no access) become a one-line DataError.

Files known only by their place in a shared folder are resolved with the folder's public listing page
(``embeddedfolderview?id=<folder>``, the page gdown reads too), one request per path component, cached per process.
Requests go where ``amad_suite.fetch.routing`` sends them ($AMAD_FETCH_URL_PREFIX; Google itself by default).
"""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from urllib.request import Request, urlopen

from amad.errors import DataError
from amad_suite.fetch.routing import routed

log = logging.getLogger(__name__)

FILE_URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
FOLDER_VIEW_URL = "https://drive.google.com/embeddedfolderview?id={id}"
_FILE_PREFIX = "https://drive.google.com/file/d/"
_FOLDER_PREFIXES = ("https://drive.google.com/drive/folders/", "https://drive.google.com/drive/u/0/folders/")
_listings: dict[str, dict[str, tuple[str, str]]] = {}  # folder id -> {name: (kind, id)}, per process


def file_url(file_id: str) -> str:
    """The direct download URL of a Drive file id (``confirm=t`` skips the interstitial where Drive allows it)."""
    return FILE_URL.format(id=file_id)


class _PageParser(HTMLParser):
    """Collects the download form (action + hidden inputs), ``/uc?export=download`` links and error captions."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form_action: str | None = None
        self.form_fields: list[tuple[str, str]] = []
        self.links: list[str] = []
        self.errors: list[str] = []
        self._in_form = False
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form" and attr.get("id") == "download-form":
            self._in_form, self.form_action = True, attr.get("action", "")
        elif tag == "input" and self._in_form and attr.get("type") == "hidden" and attr.get("name"):
            self.form_fields.append((attr["name"], attr.get("value", "")))
        elif tag == "a" and "export=download" in attr.get("href", ""):
            self.links.append(attr["href"])
        elif tag == "p" and "uc-error-subcaption" in attr.get("class", ""):
            self._in_error = True
            self.errors.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "p":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.errors[-1] += data


def confirm_url(page: str, page_url: str) -> str | None:
    """The URL that confirms a Drive interstitial page, or None when ``page`` is not one.

    Raises:
        DataError: the page is a Drive error page (e.g. the download quota is exceeded).
    """
    parser = _PageParser()
    parser.feed(page)
    if parser.form_action:
        action = urljoin(page_url, parser.form_action)
        parts = urlsplit(action)
        query = dict(parse_qsl(parts.query))
        query.update(parser.form_fields)
        return urlunsplit(parts._replace(query=urlencode(query)))
    if parser.links:
        return urljoin(page_url, parser.links[0])
    if parser.errors:
        reason = " ".join(parser.errors[0].split())
        raise DataError(f"Google Drive refused {page_url}: {reason}; retry later or download the file by hand")
    return None


class _FolderParser(HTMLParser):
    """Entries of an ``embeddedfolderview`` page: (name, kind "file" | "folder", id)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[tuple[str, str, str]] = []
        self._current: tuple[str, str] | None = None
        self._text: list[str] = []
        self._title: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "a":
            href = attr.get("href", "")
            if href.startswith(_FILE_PREFIX):
                self._current = ("file", href[len(_FILE_PREFIX) :].split("/")[0])
            elif href.startswith(_FOLDER_PREFIXES):
                self._current = ("folder", href.rstrip("/").split("/")[-1].split("?")[0])
            self._text, self._title = [], None
        elif tag == "div" and self._current and "flip-entry-title" in attr.get("class", ""):
            self._title = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current:
            name = "".join(self._title if self._title else self._text).strip()
            self.entries.append((name, *self._current))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current:
            self._text.append(data)
            if self._title is not None:
                self._title.append(data)


def _get(url: str, what: str) -> str:
    try:
        request = Request(routed(url), headers={"User-Agent": "Mozilla/5.0 amad-downloader/1"})
        with urlopen(request, timeout=60) as resp:
            return resp.read(8 << 20).decode("utf-8", errors="replace")
    except HTTPError as exc:
        reason = f"HTTP {exc.code} {exc.reason}"
        raise DataError(f"listing {what} failed with {reason}: check that the folder is shared publicly") from None
    except (URLError, OSError) as exc:
        raise DataError(f"cannot reach Google Drive to list {what} ({getattr(exc, 'reason', exc)})") from None


def list_folder(folder_id: str) -> dict[str, tuple[str, str]]:
    """``{name: (kind, id)}`` of a public Drive folder (kind "file" or "folder"); cached per process."""
    if folder_id not in _listings:
        page = _get(FOLDER_VIEW_URL.format(id=folder_id), f"Drive folder {folder_id}")
        parser = _FolderParser()
        parser.feed(page)
        _listings[folder_id] = {name: (kind, fid) for name, kind, fid in parser.entries if name}
    return _listings[folder_id]


def resolve_folder_file(folder_id: str, path: str) -> str:
    """The file id of ``path`` (``vqa/karpathy_train.json``) inside a public Drive folder.

    Raises:
        DataError: Drive is unreachable, or a path component is not in the listing (the message names it).
    """
    current, walked = folder_id, []
    parts = [p for p in path.split("/") if p]
    for i, name in enumerate(parts):
        listing = list_folder(current)
        kind_id = listing.get(name)
        want = "file" if i == len(parts) - 1 else "folder"
        if kind_id is None or kind_id[0] != want:
            near = ", ".join(sorted(listing)[:12]) or "nothing"
            where = "/".join(walked) or "the top level"
            raise DataError(
                f"Drive folder {folder_id} has no {want} {name!r} in {where} (it lists: {near}): "
                "download the file by hand and place it as the manifest says"
            )
        walked.append(name)
        current = kind_id[1]
    log.info("resolved Drive folder %s path %s to file id %s", folder_id, path, current)
    return current
