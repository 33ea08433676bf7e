"""Containment for untrusted candidate regions: a static gate and an isolated runner.

``sandbox.gate.check`` refuses a region before it runs; ``sandbox.runner.Sandbox`` runs an accepted
one in a locked-down child process and hands back only validated arrays.
"""
