"""Start JupyterLab on the course the way ``make lab`` does: ``python -m recsys_tf.lab [notebooks/] [lab options]``.

What it adds to a plain ``jupyter lab``: the local-data directory is made absolute for every kernel
(:func:`recsys_tf.data.download.export_data_dir`), and ``--allow-root`` is passed when running as
root (containers, cloud notebooks), where Jupyter otherwise refuses to start.
"""

from __future__ import annotations

import os
import sys

from recsys_tf.data.download import export_data_dir


def lab_command(args: list[str]) -> list[str]:
    """The ``jupyter lab`` command line for ``args`` on this machine."""
    cmd = [sys.executable, "-m", "jupyterlab", *args]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        cmd.append("--allow-root")
    return cmd


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    found = export_data_dir()
    print(f"[recsys-tf] local data: {found or 'none (the notebooks use the simulated shop)'}", flush=True)
    cmd = lab_command(args)
    if "--allow-root" in cmd and "--allow-root" not in args:
        print("[recsys-tf] running as root: starting JupyterLab with --allow-root", flush=True)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
