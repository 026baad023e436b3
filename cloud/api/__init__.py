"""The cloud's HTTP API (FastAPI). See :func:`cloud.app.create_app` for the seams."""
