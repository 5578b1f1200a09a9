"""The analysing half: from timings (and published brand rows) to tables, charts and results/.

It reads only timings, never the store, so fresh studies and imported published ones meet in
one frame. Modules, in the order data flows through them:

- ``km``          Kaplan–Meier (SciPy ``stats.ecdf``), exact vectorised medians
- ``business``    business-hours elapsed time and send windows (rules from ``mystery.hours``)
- ``metrics``     counts, rates, means, medians per any grouping
- ``series``      year-on-year, sectors, channels, brand panel, sources
- ``tables``      CSV and Markdown with fixed formatting
- ``charts``      the house style (``house.mplstyle``), PNG + SVG, byte-stable; ``batch``
                  draws them in a pool of processes
- ``report``      one study's report; ``seriesreport`` one series' results
- ``manifest``    each results folder's ``charts.json``: what every chart draws
- ``power``       a plan's power by simulation (``mystery plan --power``), a batched log-rank

The frames it reads are :mod:`mystery.timings`' (the schema, published brand rows, study.json);
it imports neither the store nor the study model (:func:`mystery.publish.report_study` joins a
store to a report, above both).
"""
