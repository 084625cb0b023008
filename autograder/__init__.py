"""The kit as a Gradescope autograder: the bundle (build_bundle.py) and the grading of one submission (grade_submission.py)."""
