"""Helpers for the real-browser tests (tests/test_browser.py): a private Jupyter environment,
local servers started as subprocesses, and Debian's Chromium driven by Playwright.

Nothing here downloads a browser: Playwright only drives the system Chromium
(``/usr/bin/chromium``, installed by ``.ci/run`` with apt).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions", "--no-first-run"]

# JupyterLab user settings for an unattended browser: no news/update toasts, the notebook's
# kernel starts without a "Select Kernel" dialog, every cell stays attached to the DOM, and
# nothing is ever autosaved (the committed notebook must keep no outputs).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
        {"autoStartDefaultKernel": True, "windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(root: Path, base_env: dict[str, str]) -> dict[str, str]:
    """An environment whose Jupyter/IPython dirs all live under ``root`` (nothing from ~ leaks
    in), with a ``python3`` kernelspec that runs this interpreter first on ``JUPYTER_PATH``."""
    dirs = {name: root / name for name in ("config", "runtime", "data", "ipython", "kernels",
                                           "lab-settings", "lab-workspaces",
                                           "checkpoints")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    env = dict(base_env)
    env.update(JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               JUPYTER_DATA_DIR=str(dirs["data"]), IPYTHONDIR=str(dirs["ipython"]),
               JUPYTER_PATH=os.pathsep.join([str(dirs["kernels"] / "share" / "jupyter")]
                                            + [p for p in [base_env.get("JUPYTER_PATH")] if p]),
               JUPYTERLAB_SETTINGS_DIR=str(dirs["lab-settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(dirs["lab-workspaces"]),
               PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_TOKEN", None)
    # kernel.json's argv is sys.executable, whatever `python` is on PATH
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--name", "python3",
                    "--display-name", "Python 3 (ipykernel)", "--prefix", str(dirs["kernels"])],
                   env=env, check=True, capture_output=True)
    for rel, values in LAB_SETTINGS.items():
        path = dirs["lab-settings"] / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))
    env["_LAB_SETTINGS_DIR"] = str(dirs["lab-settings"])
    env["_LAB_WORKSPACES_DIR"] = str(dirs["lab-workspaces"])
    env["_CHECKPOINTS_DIR"] = str(dirs["checkpoints"])
    return env


class Server:
    """A local server subprocess; output goes to ``log``. ``stop()`` always cleans up, kernels
    (which Jupyter starts in their own sessions) included."""

    def __init__(self, name: str, cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path,
                 port: int, token: str):
        self.name, self.cmd, self.log, self.port, self.token = name, cmd, log, port, token
        self.base = f"http://127.0.0.1:{port}"
        self._log_file = open(log, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env={k: v for k, v in env.items()
                                                        if not k.startswith("_")},
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, path: str, timeout: float = 120.0) -> float:
        """Poll ``path`` until the server answers HTTP at all; the seconds it took."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it was "
                                   f"ready:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + path, timeout=5):
                    break
            except urllib.error.HTTPError:  # 403/404: the server is up, that is all we ask
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not answering on {self.base} after "
                                       f"{timeout:.0f}s:\n{self.log_tail()}")
                time.sleep(0.5)
        return time.monotonic() - self.started

    def log_tail(self, n_chars: int = 20000) -> str:
        text = self.log.read_text(errors="replace")
        return text[-n_chars:]

    def _descendants(self):
        try:
            import psutil  # a dependency of ipykernel
            return psutil.Process(self.proc.pid).children(recursive=True)
        except Exception:
            return []

    def stop(self, grace: float = 20.0) -> None:
        if self.proc.poll() is None:
            kids = self._descendants()  # kernels live in their own sessions: collect them first
            try:  # both Jupyter Server and Voila stop (and shut their kernels down) on SIGTERM
                self.proc.terminate()
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
            for kid in kids:  # whatever outlived its server
                try:
                    kid.kill()
                except Exception:
                    pass
        self._log_file.close()


def start_lab(root: Path, env: dict[str, str], log: Path) -> Server:
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
           "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension panel
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.user_settings_dir={env['_LAB_SETTINGS_DIR']}",
           f"--LabApp.workspaces_dir={env['_LAB_WORKSPACES_DIR']}",
           # opening a notebook writes a checkpoint: not next to it, in the repository
           f"--FileCheckpoints.checkpoint_dir={env['_CHECKPOINTS_DIR']}",
           # window.jupyterapp: the option JupyterLab's own UI tests (Galata) rely on
           "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:  # CI containers run as root
        cmd.append("--ServerApp.allow_root=True")
    server = Server("jupyterlab", cmd, cwd=root, env=env, log=log, port=port, token=token)
    server.wait_ready(f"/api/status?token={token}")
    return server


def start_voila(notebook: Path, env: dict[str, str], log: Path) -> Server:
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "voila", notebook.name, "--no-browser", f"--port={port}",
           "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", f"--Voila.token={token}",
           f"--Voila.root_dir={notebook.parent}", "--VoilaConfiguration.show_tracebacks=True"]
    server = Server("voila", cmd, cwd=notebook.parent, env=env, log=log, port=port, token=token)
    # a static file: GET / would execute the notebook
    server.wait_ready("/voila/static/favicon.ico")
    return server


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
