"""Errors of the delivery channels (email, webhook, messenger)::

    CloudError
    └── DeliveryError
        └── DeliveryConfigError   a channel's configuration is unusable (a bad SMTP URL)

Delivery has its own root rather than borrowing the work-order errors: a bad SMTP URL is a
startup problem of a channel, not a 422 about a work order, and delivery sits above work orders
in the ops layers, so the work-order tree would be the wrong owner anyway. A failed *send* is not
an exception here: it is recorded on the notification and retried by the sender.
"""

from __future__ import annotations

from cloud.runtime.errors import CloudError


class DeliveryError(CloudError):
    """Root of the delivery channel errors."""

    code = "delivery_error"


class DeliveryConfigError(DeliveryError):
    """A channel's configuration (URL, credentials) cannot be used."""

    code = "invalid"
