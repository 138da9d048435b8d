"""What every stage shares, each concept in one module: errors, the database and its
migrations, settings, paper records and JSON-lines files, the taxonomy tree, run
recording, the HTTP helper, the decision log, publication venues, safe CSV/Markdown
cells, progress reporting.

Nothing here imports a stage; every stage may import from here.
"""
