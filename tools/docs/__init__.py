"""The docs' tooling: benchmark records and the page they render, and the course website."""
