"""One router per resource; :mod:`cloud.app` includes them."""
