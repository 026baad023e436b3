"""The cloud's HTTP API (FastAPI). See :func:`cloud.api.app.create_app` for the seams."""
