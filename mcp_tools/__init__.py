"""tracker-mcp: a thin stdio MCP server whose tools call the tracker's REST API.

The package never imports ``tracker_service``; it is a REST client (``client.py``) plus a
tool surface (``toolsets/``), assembled in ``server.py`` and started by ``__main__.main``.
"""
