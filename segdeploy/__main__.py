"""``python -m segdeploy`` runs the CLI."""

from segdeploy.cli import main

main()
