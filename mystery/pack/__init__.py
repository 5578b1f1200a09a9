"""The client pack: one client brand against its peers, as a page, a PDF and slide charts.

``figures`` computes the client's standing (rank, percentile, medians with 95 % intervals
against the peer median and the best peer, response rates, the year-on-year line, where it
is fastest and slowest); ``page`` renders the self-contained HTML page (great_tables, inline
SVG); ``pdf`` prints it with headless Chromium; ``make`` reads the sources and writes the pack
whole or not at all. Above :mod:`mystery.publish` in the layering (it reads a study's store
through the timings seam, as ``report`` does); below the CLI.
"""
