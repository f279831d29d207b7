"""Command-line tools and what they run: the token cache (prepare, merge), the demo, and the
generated demo corpus."""
