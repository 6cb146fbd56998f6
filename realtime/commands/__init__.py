"""Commands: the ``fer-live`` typer app and a run's lifecycle.

Modules: ``app`` (the ``fer-live`` command and ``main``), ``run`` (one live run), ``bench`` and
``bench_smooth`` (``fer-live bench``), ``compile`` (``fer-live compile``), ``report``
(``fer-live report``), ``flags`` (option groups shared by commands), ``logs`` (console logging),
``signals`` (how SIGINT, SIGTERM and SIGHUP end a run).
The last layer: it may import every stage and ``fer_live.pipeline``.
"""
