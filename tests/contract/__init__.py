"""Contract fixtures: the provider's documented answers, and the sandbox checked against them."""
