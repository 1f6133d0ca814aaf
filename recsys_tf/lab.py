"""Start JupyterLab on the course the way ``make lab`` does: ``python -m recsys_tf.lab [notebooks/] [lab options]``.

What it adds to a plain ``jupyter lab``: the local-data directory is made absolute for every kernel
(:func:`recsys_tf.data.download.export_data_dir`), and ``--allow-root`` is passed when running as
root (containers, cloud notebooks), where Jupyter otherwise refuses to start; each kernel talks to
Lab over Unix sockets in a folder only its owner can open (:class:`recsys_tf.course.PrivateSockets`),
not over TCP ports on 127.0.0.1 that any local user can reach.
"""

from __future__ import annotations

import functools
import os
import sys

from recsys_tf.course import kernel_manager_class, unix_sockets_fit
from recsys_tf.data.download import export_data_dir

KERNEL_MANAGER = "recsys_tf.lab.ServerKernelManager"  # not __name__: that is "__main__" under python -m


@functools.cache
def _server_kernel_manager() -> type:
    from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

    return kernel_manager_class(ServerKernelManager)


def __getattr__(name: str) -> type:
    # Lab imports the class by name (KERNEL_MANAGER) at start-up; jupyter_server is imported only then
    if name == "ServerKernelManager":
        return _server_kernel_manager()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lab_command(args: list[str]) -> list[str]:
    """The ``jupyter lab`` command line for ``args`` on this machine."""
    cmd = [sys.executable, "-m", "jupyterlab", *args]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        cmd.append("--allow-root")
    if unix_sockets_fit() and not any("kernel_manager_class" in a for a in args):  # a user's own choice wins
        cmd.append(f"--MultiKernelManager.kernel_manager_class={KERNEL_MANAGER}")
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
