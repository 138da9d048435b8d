"""What every stage shares, each concept in one module: errors, the database and its
migrations, settings, paper records, the decision log, progress reporting.

Nothing here imports a stage; every stage may import from here.
"""
