import os
import sys

# `python -m lintml` puts the current folder first on sys.path: every module lintml
# imports later (tomllib, difflib, libcst, ...) would be looked for in the project being
# checked first, and a `tomllib.py` or `libcst.py` there would run. lintml never runs
# the code it reads, so the folder comes off the path before anything else is imported.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from lintml.cli import main  # noqa: E402

raise SystemExit(main())
