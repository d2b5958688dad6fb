"""MkDocs hook: tidy the Sphinx-isms of the docstrings in the rendered API pages.

The docstrings are written for ``help()`` and for readers of the source, with a few
Sphinx roles (:class:`Kite`, :meth:`~aio_trader.kite.Kite.place_order`) and ``::``
literal-block markers. Rendered as Markdown, those would show their punctuation; this
hook keeps the code span and drops the role, shortens ``~a.b.C`` to ``C`` as Sphinx does,
turns a paragraph-ending ``::`` into ``:``, and shows reST "simple tables" (a paragraph
framed by ``=== ===`` rules) as the preformatted text they are.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:func|class|meth|data|mod|attr|exc|obj):(<code>)")
_TILDE = re.compile(r"<code>~(?:[\w]+\.)*([\w]+)</code>")
_LITERAL = re.compile(r"::</p>")
_SIMPLE_TABLE = re.compile(r"<p>(=+(?: +=+)+\n.*?\n=+(?: +=+)+)</p>", re.DOTALL)


def on_page_content(html: str, **_: Any) -> str:
    html = _ROLE.sub(r"\1", html)
    html = _TILDE.sub(r"<code>\1</code>", html)
    html = _LITERAL.sub(":</p>", html)
    return _SIMPLE_TABLE.sub(r"<pre><code>\1</code></pre>", html)
