"""netlab: learn ports and sockets by running them.

The package face is small on purpose; each tool lives in its own module
(``netlab.packet``, ``netlab.sysinfo``, ...) and the command line in
``netlab.cli``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
