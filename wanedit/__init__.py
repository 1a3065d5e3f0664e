"""wanedit's shared core: the request contract, job records, events and storage addresses.

Producers and workers both import this package; neither imports the other.
"""
