"""The seam between collecting and analysing: the timings schema, export, published rows,
the importer of published studies and study.json.

Modules: brandrows, export, importer, published, schema, studyinfo.
"""
