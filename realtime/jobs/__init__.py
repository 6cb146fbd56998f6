"""Batch jobs: many videos through the pipeline, resumable, on local worker processes or Ray.

``inputs`` expands the command's INPUTS into an ordered list with stable output names,
``state`` keeps the job's record in its folder (``job.json``, ``job.csv``, one manifest per
finished input), ``work`` turns one input into its outputs with stages loaded once per worker,
``local`` and ``ray_runner`` run the workers, and ``driver`` plans a job and applies the results.
"""
