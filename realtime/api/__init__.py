"""The Python API: ``Recognizer`` (stills, streams, a capture loop you own), ``analyze`` (a whole
video into records and per-track summaries), and the result types ``Face`` and ``FrameResult``,
which are the records the CLI writes. ``fer_live`` re-exports all of them."""
