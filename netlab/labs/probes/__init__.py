"""Child-side probes: standard-library code that runs inside the sandbox.

``runtime.py`` is the child's main program; ``labNN.py`` holds a lab's own
probes (functions ``probe(labdir, **args)`` returning plain JSON data). The
grader sends their source text into the sandbox (netlab itself is not
visible there) and judges what they report.
"""
