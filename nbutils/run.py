"""``python -m nbutils.run``: the same headless runner as ``python -m nbutils.headless``.

Both names run every notebook with papermill under a profile, e.g.
``python -m nbutils.run --profile smol``.
"""

from .headless import main

if __name__ == "__main__":
    raise SystemExit(main())
