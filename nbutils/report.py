"""Small display helpers shared by the notebooks.

``summary`` prints one machine-readable line per notebook, ``WORKBOOK_SUMMARY {json}``,
which the notebook-execution tests read back to assert the phenomena on the executed
copy; people see the same numbers as a table. Under Voila (a notebook served as an app)
the line is not printed: an app shows the app.
"""

from __future__ import annotations

import json
import os

import pandas as pd

MARKER = "WORKBOOK_SUMMARY"


def in_voila() -> bool:
    """Whether this kernel serves a Voila app (Voila sets ``VOILA_BASE_URL`` in its kernels)."""
    return "VOILA_BASE_URL" in os.environ


def summary(notebook: str, values: dict) -> pd.DataFrame:
    """The notebook's headline numbers as a table, and as the line its tests read back."""
    if not in_voila():
        print(f"{MARKER} " + json.dumps({"notebook": notebook, **values}, default=float))
    flat = {k: v for k, v in values.items() if not isinstance(v, (dict, list))}
    return pd.DataFrame([flat]).T.rename(columns={0: notebook})


def read_summaries(executed_notebook) -> dict[str, dict]:
    """Every ``WORKBOOK_SUMMARY`` line printed in an executed notebook (path or nbformat node)."""
    import nbformat
    nb = nbformat.read(str(executed_notebook), as_version=4) if not hasattr(executed_notebook, "cells") \
        else executed_notebook
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            for line in text.splitlines():
                if line.startswith(MARKER + " "):
                    payload = json.loads(line[len(MARKER) + 1:])
                    found[payload["notebook"]] = payload
    return found
