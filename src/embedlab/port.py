"""`python -m embedlab.port` prints a TCP port that is free on this machine now.

The train rule passes it to `accelerate launch --main_process_port`, so that several training
jobs on one node (each with its own GPUs) do not all try to rendezvous on 29500.
"""

import socket


def free_port() -> int:
    """A port the OS reports free (bound to port 0, then released).

    >>> 1024 <= free_port() <= 65535
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    print(free_port())
