"""Development tools, kept apart from the product and out of the wheel (pyproject.toml).

The commands people type while working on Vetted: `seed_demo` (the demo cast `make run` prints),
`demo` (the whole story against a running server), `screenshots` (`make screenshots`) and
`stripe_double` (serves the top-level `stripe_double` package, which `make run` starts while there
are no Stripe keys). Settings install this app only when it can be imported, so a production
install from the wheel starts without it.
"""
