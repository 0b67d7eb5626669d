"""The HTTP edge: the only part of ``shared`` that knows Starlette.

``app.build_app`` composes the feature modules (``meta``, ``teams``, ``account``,
``admin``, ``runs``), each ``routes(runtime)``; ``boundary`` and ``observability`` are the
middleware, ``request`` reads requests, ``sse`` streams events, ``docs`` and ``dashboard``
serve pages. Below it, nothing imports this package (``tests/unit/test_layers.py``).
"""
