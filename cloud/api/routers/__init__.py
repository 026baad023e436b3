"""One router per resource; :mod:`cloud.api.app` includes them."""
