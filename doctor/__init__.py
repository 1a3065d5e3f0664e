"""`wanedit doctor`: checks a configured deployment, and with `--live` finds out, for a few
images' price, what the provider's documentation leaves open.

It reads the settings the workers read and uses the workers' own provider client and parsers,
so it stands above producers and workers, beside the sandbox (the `wanedit` console script
loads it by entry point).
"""
