"""`python -m kubesim`: run the emulated API server until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import KubeSim
from .workloads import SimSettings


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kubesim",
                                     description="A Kubernetes API server emulator.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--kubeconfig", help="write a kubeconfig (context 'kubesim') here")
    parser.add_argument("--no-simulate", action="store_true",
                        help="do not move workload status (Deployments stay unavailable)")
    parser.add_argument("--ready-delay", type=float, default=SimSettings.ready_delay,
                        help="seconds until a rollout becomes available (default %(default)s)")
    parser.add_argument("--no-request-log", action="store_true",
                        help="do not keep the request log (for long-running sandboxes)")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    sim = KubeSim(
        host=args.host,
        port=args.port,
        simulate=not args.no_simulate,
        sim_settings=SimSettings(ready_delay=args.ready_delay),
        record_requests=not args.no_request_log,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def announce() -> None:
        if args.kubeconfig:
            sim.write_kubeconfig(args.kubeconfig)
        print(sim.url, flush=True)

    await sim.serve_until(stop, announce)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        asyncio.run(_main(args))
    except OSError as exc:
        print(f"kubesim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
