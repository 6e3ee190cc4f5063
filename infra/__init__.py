"""Deployment templates; a package only so that infra.checks imports the same way everywhere."""
