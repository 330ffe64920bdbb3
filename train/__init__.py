"""Training MANGO on GPU (or CPU): `python -m train --help`. Calls mango/, writes checkpoints."""
