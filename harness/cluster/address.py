"""A head's address checked, and a lab on one machine kept on loopback.

Ray replaces a loopback address given to `ray start --node-ip-address`, `ray start --address` or
`ray.init(address=...)` by this machine's interface address (`ray._private.services.resolve_ip_for_localhost`;
Ray issues #26293 and #59110), so a one-machine lab would listen on, and advertise, the interface. Where the
address given is loopback, onebench's entries to Ray (`bench worker`, the sweep's driver, `bench cluster
status`) keep it as given: Ray then binds its servers to the node address it was given and advertises it.
`python -m harness.cluster.address start ...` is Ray's own `ray start` with that one change.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

from backends.config import quoted
from harness.errors import HarnessError

LOOPBACK = "127.0.0.1"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_of(address: str) -> str:
    """The host part of HOST:PORT (an IPv6 host in brackets keeps its colons)."""
    return address.rsplit(":", 1)[0].strip("[]") if ":" in address else address


def check_address(address: str, option: str) -> str:
    """A head's HOST:PORT, or one line saying what is wrong with it (empty, no port, a port out of range)."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise HarnessError(f"{option} {quoted(address)} is not HOST:PORT (e.g. 127.0.0.1:6379); give the head's address "
                           "as `bench worker --head` printed it")
    return address.strip()


def check_port_free(port: int, host: str | None, option: str = "--port") -> int:
    """A port a head may listen on: 1-65535 and free on `host` (every interface when None), checked before Ray
    starts, which would otherwise pick another port than the one the user was told, or end in a traceback."""
    if not 0 < port < 65536:
        raise HarnessError(f"{option} {port} is not a port; give one between 1 and 65535 (Ray's default is 6379)")
    with socket.socket(socket.AF_INET6 if host and ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed socket's TIME_WAIT is not "in use"
        try:
            probe.bind((host.strip("[]") if host else "", port))
        except OSError as exc:
            where = f" on {host}" if host else ""
            raise HarnessError(f"{option} {port}: the port is in use{where} ({exc.strerror}); choose another port, or "
                               "`ray stop` if it is an old head of yours") from None
    return port


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """One line when nothing answers at HOST:PORT: Ray's own connect retries a missing head for minutes."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise HarnessError(f"cannot reach the Ray cluster at {address} ({exc.strerror or type(exc).__name__}); start "
                           "its head with `bench worker --head` and pass its address (HOST:PORT)") from None


def keep_loopback() -> None:
    """From now on in this process, Ray keeps a loopback address as given instead of the interface's."""
    from ray._private import services

    def as_given(host: str) -> str:
        if not host:
            raise ValueError(f"Malformed host: {host}")
        return host

    services.resolve_ip_for_localhost = as_given  # `ray start` looks it up on this module at call time


def main() -> None:
    """`ray start ...` (the arguments after this module's name) with loopback addresses kept."""
    keep_loopback()
    from ray.scripts.scripts import main as ray_main

    sys.argv = ["ray", *sys.argv[1:]]
    ray_main()


if __name__ == "__main__":
    main()
