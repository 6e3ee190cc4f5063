"""`python -m secret_rotation.cli` is the same as the `secret-rotation` console script."""

from secret_rotation.cli.app import main

main()
