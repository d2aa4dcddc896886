"""The reliability stress suite: ``python -m tests.stress`` (``make stress``) prints one table.

Each module holds plain checks, no pytest: ``kill_resume``, ``divergence``, ``search`` (with
``postgres`` for a local server) and ``models`` (what they train); ``run`` calls them and counts
cases tried and passed per category. The fast ``tests/test_reliability_*.py`` run a few of the
same cases in ``make test``.
"""
