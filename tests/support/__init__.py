"""Helpers shared by the tests (imported as ``support.<module>``; tests/ is on ``sys.path`` through
the rootdir conftest, and the child-process scripts here put it there themselves)."""
