"""Installed from a wheel, as a user would: `pip install <checkout>` into a new virtual
environment (not editable, no extras), then the server extension is found and enabled by
the configuration file the wheel ships (`etc/jupyter/jupyter_server_config.d/`), and its
module imports from the installed copy.

Slow (a minute or two with pip's cache warm, longer on a cold one): `-m "not slow"` leaves
it out locally. In CI it never skips: a package index that cannot be reached fails it.
"""

from __future__ import annotations

import os
import re
import subprocess
import venv
from pathlib import Path

import pytest
from conftest import IN_CI, missing

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: pip's words when the index (not the package) is the problem.
OFFLINE = ("NewConnectionError", "Temporary failure in name resolution",
           "Network is unreachable", "Max retries exceeded")

pytestmark = pytest.mark.slow


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_the_wheel_installs_and_enables_the_server_extension(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py, jupyter = env_dir / "bin" / "python", env_dir / "bin" / "jupyter"
    # Jupyter's per-user directories in tmp: only the environment's own config counts
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "JUPYTER_PATH",
                        "JUPYTER_CONFIG_PATH")}
    env.update({"JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
                "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
                "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})

    pip = _run([str(py), "-m", "pip", "install", "--no-input", str(ROOT)], env, tmp_path, 1500)
    out = pip.stdout + pip.stderr
    if pip.returncode != 0 and any(word in out for word in OFFLINE) and not IN_CI:
        missing("the package index")
    assert pip.returncode == 0, out[-5000:]
    assert "Successfully installed" in pip.stdout and "aigis-jupyter" in pip.stdout, out[-3000:]

    # the wheel, not the checkout: a regular install, and its shared-data config in place
    show = _run([str(py), "-m", "pip", "show", "-f", "aigis-jupyter"], env, tmp_path, 120)
    assert show.returncode == 0, show.stderr
    assert "Editable project location" not in show.stdout, show.stdout[:2000]
    shipped = env_dir / "etc" / "jupyter" / "jupyter_server_config.d" / "aigis_jupyter.json"
    assert shipped.is_file(), show.stdout[-3000:]

    listed = _run([str(jupyter), "server", "extension", "list"], env, tmp_path, 300)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    text = ANSI.sub("", listed.stderr + listed.stdout)  # it prints to stderr
    sections = _config_sections(text)
    own = sections.get(str(env_dir / "etc" / "jupyter"), "")
    assert re.search(r"^\s*aigis_jupyter enabled\s*$", own, re.M), text
    assert re.search(r"^\s*- Validating aigis_jupyter\.\.\.\s*$", own, re.M), text
    assert re.search(r"^\s*aigis_jupyter \S+ OK\s*$", own, re.M), text
    assert "aigis_jupyter disabled" not in text and "X aigis_jupyter" not in text, text

    # next to it, the JupyterLab sidebar the wheel ships prebuilt (labextension/)
    labext = _run([str(jupyter), "labextension", "list"], env, tmp_path, 300)
    assert labext.returncode == 0, labext.stdout + labext.stderr
    text = ANSI.sub("", labext.stderr + labext.stdout)
    assert str(env_dir / "share" / "jupyter" / "labextensions") in text, text
    assert re.search(r"^\s*aigis-jupyter v\S+ enabled OK \(python, aigis-jupyter\)\s*$",
                     text, re.M), text

    imported = _run([str(py), "-c", "import aigis_jupyter, aigis_jupyter.server.app as app; "
                     "print(aigis_jupyter.__file__); print(app.AigisExtension.name)"],
                    env, tmp_path, 300)
    assert imported.returncode == 0, imported.stderr[-3000:]
    where, name = imported.stdout.split()
    assert Path(where).is_relative_to(env_dir) and name == "aigis_jupyter", imported.stdout


def _config_sections(text: str) -> dict[str, str]:
    """`jupyter server extension list` output, split by its `Config dir: …` headers."""
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        header = re.match(r"^Config dir: (.+?)\s*$", line)
        if header:
            current = header.group(1)
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections

