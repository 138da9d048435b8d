"""The web triage page (Flask): the queue, one paper, decisions and exports in a browser."""
