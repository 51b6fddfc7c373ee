"""Reproduction tooling for the coursework notebooks: not part of the student's `mu.` namespace."""
