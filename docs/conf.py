"""Sphinx configuration for the netlab lessons and reference."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

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
]
intersphinx_mapping = {}
templates_path = ["_templates"]
exclude_patterns = ["_build", "locale"]
locale_dirs = ["locale/"]
gettext_compact = False
html_theme = "furo"
html_title = f"netlab {release}"
autodoc_member_order = "bysource"
nitpicky = False
