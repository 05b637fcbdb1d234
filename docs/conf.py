"""Sphinx configuration for the netlab lessons and reference.

Build (warnings are errors, as on CI)::

    python -m sphinx -W -b html docs docs/_build/html
    python -m sphinx -W -b html -D language=zh_CN docs docs/_build/html-zh_CN

The Simplified Chinese translation lives in ``docs/locale/zh_CN/LC_MESSAGES/``
as one ``.po`` file per page; Sphinx compiles them to ``.mo`` at build time.
Refresh the templates after editing a page with::

    python -m sphinx -b gettext docs docs/_build/gettext
    sphinx-intl update -p docs/_build/gettext -d docs/locale -l zh_CN
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "_ext"))

import netlab  # noqa: E402

project = "netlab"
author = "the netlab developers"
copyright = "2026, the netlab developers"
version = release = netlab.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
    "netlab_cli",  # docs/_ext/netlab_cli.py: the CLI reference, generated from the parser
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
intersphinx_mapping = {}
exclude_patterns = ["_build", "locale", "_ext"]

# Translations: one catalog per page, compiled automatically when building.
locale_dirs = ["locale/"]
gettext_compact = False
gettext_uuid = False
gettext_location = False  # keeps the .po files stable when lines move

# MyST: the lab handouts are Markdown files in exercises/, included as they are.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = f"netlab {release}"
html_static_path = ["_static"]
html_css_files = ["netlab.css"]
templates_path = ["_templates"]
# Furo's sidebar, plus a switch to the same page in the other language's build.
html_sidebars = {"**": [
    "sidebar/scroll-start.html", "sidebar/brand.html", "lang-switch.html",
    "sidebar/search.html", "sidebar/navigation.html", "sidebar/scroll-end.html",
]}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False

# Doctests run from the repository root with the package importable.
doctest_global_setup = "import netlab"

# Curly quotes and ellipses, but leave "--" alone: options like --help must stay readable.
smartquotes_action = "qe"
