"""Security operations log analysis (see README.md). The subpackages are the API; the package
itself exports nothing."""

__all__: list[str] = []
