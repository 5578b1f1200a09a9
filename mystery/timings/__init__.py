"""The seam between collecting and analysing: the timings schema, export, published rows,
the importer of published studies and study.json, and the baseline a plan's power is
simulated from (earlier timings, or the sandbox profiles).

Modules: baseline, brandrows, export, importer, published, schema, studyinfo.
"""
