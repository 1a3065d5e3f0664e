"""A DashScope-compatible sandbox of the Wan 2.5 image-edit API (``wan2.5-i2i-preview``).

``wanedit.sandbox.server.SandboxServer`` runs it over HTTP; ``wanedit.sandbox.cli.command``
is ``wanedit sandbox``.
"""
