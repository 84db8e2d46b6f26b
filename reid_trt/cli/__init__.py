"""Command-line front ends: option parsing only; the work is done by library functions."""
