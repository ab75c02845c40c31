"""Reliability tests (issue 11): one test per fault; docs/reliability.md lists them."""
