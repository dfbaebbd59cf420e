"""A student's answers to Homework 2, as plain Python: ``solutions`` (right) and ``buggy`` (wrong on purpose)."""
