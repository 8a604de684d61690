"""The monthly data import: performance packs and finance returns (CSV and XLSX).

``parse`` reads a file (no database), ``validate`` checks it against units and measures,
``load`` stores the valid rows as revisions, ``batches`` keeps the upload -> preview -> load
lifecycle and ``export`` writes the rejects report and the templates (injection-safe).
"""
