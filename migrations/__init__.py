"""Numbered schema migrations, run by playhouse.migrations (see app/storage/db.py).

A package so that a non-editable install carries the files with it.
"""
