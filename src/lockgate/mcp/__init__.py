"""The Model Context Protocol tools for coding agents, whatever carries them (docs/agents.md).

One tool catalog (:mod:`lockgate.mcp.tools`) served over two transports: standard input
and output by ``lockgate mcp`` (:mod:`lockgate.cli.mcp_server`), and streamable HTTP at
``/mcp`` by ``lockgate serve`` (:mod:`lockgate.api.mcp_http`). Every tool is one or two
calls of the management API through a :class:`~lockgate.mcp.gateway.ManagementApi` port,
made with the caller's own automation token: the server's governed change path decides
every write, whichever transport carried it.
"""

from __future__ import annotations

__all__: list[str] = []
