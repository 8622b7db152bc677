"""Serve strongroom's real application under a chosen ASGI server (benchmark helper, not a product path).

``python -m bench.serve_strongroom --server uvicorn|granian --port N --storage URL`` starts a dev-mode
node (root token ``root``, KV v2 at ``secret/``) exactly as ``strongroom server --dev`` does, so the two
HTTP servers can be compared on the same application. uvicorn's httptools parser rejects the ``LIST``
verb, so only non-LIST requests can be compared this way.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from strongroom.api.app import VaultApp
from strongroom.cli.server import start_dev
from strongroom.core.node import Node
from strongroom.storage.url import open_store


async def main(server: str, port: int, storage: str) -> None:
    node = Node(open_store(storage))
    await start_dev(node, storage, f"http://127.0.0.1:{port}", "root")
    app = VaultApp(node)
    if server == "uvicorn":
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, http="httptools", loop="none",
                                lifespan="off", access_log=False, log_level="warning")
        await uvicorn.Server(config).serve()
    else:
        from granian.constants import Interfaces
        from granian.server.embed import Server

        embedded = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, embedded.stop)
        await embedded.serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=["uvicorn", "granian"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args()
    import uvloop

    uvloop.run(main(args.server, args.port, args.storage))
