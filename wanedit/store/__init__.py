"""Everything that talks to Redis: key names, Lua scripts, the job record, admission, counters.

It imports the core only (never wanedit.config): the key prefix and every other value are
passed in by whoever builds these objects.
"""
