"""Data in and out: the record format, export, import, and importers of other trackers' files."""
