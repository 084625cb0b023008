"""Grading: the nbgrader course, the student release, the sandboxed grader, its outputs and benchmarks."""
