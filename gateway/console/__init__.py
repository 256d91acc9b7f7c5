"""The operator console: server-rendered pages under ``/console/`` on the API listener.

``routes.add_console`` mounts it; ``session`` owns logins, sessions and CSRF tokens;
``pages`` and ``actions`` are the views (``subscribers``: pool consent lookup and
change); ``charts`` samples the gateway's own counters into a one-hour ring buffer and
renders them as inline SVG. Every asset is served from ``static/`` (no CDN).
"""
