"""The single-file HTML report, parsed into what the report tests look at."""

from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    """Collects what the tests look at: summary-table rows, images, scripts, text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.imgs: list[dict] = []
        self.scripts = 0
        self.text: list[str] = []
        self._table = self._tbody = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "summary":
            self._table = True
        elif tag == "tbody" and self._table:
            self._tbody = True
        elif tag == "tr" and self._tbody:
            self.rows.append(a)
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = self._tbody = False

    def handle_data(self, data):
        self.text.append(data)


def parse_page(html: str) -> Page:
    """The report page ``html``, parsed."""
    page = Page()
    page.feed(html)
    page.close()
    return page
