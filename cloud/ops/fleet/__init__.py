"""Fleet operations: running many communities' edge boxes from the cloud (issue 19).

This part holds **remote commands** (a write to a device point: a pump's pressure setpoint, a
fault reset), sent on the gateway's ``cmd`` topic and answered on ``cmd/reply``:

* :mod:`.validate` — the cloud's check of a command against the device profile (writable,
  range, enum), with the edge's reason codes, before anything is queued;
* :mod:`.repo` — the ``device_commands`` table: the dispatcher's queue *and* the audit trail
  (who, when, what, result), refused commands included;
* :mod:`.dispatcher` — the ``command-dispatcher`` component: sends queued commands to gateways
  that are online, stores the replies, times out the unanswered and expires the undeliverable.

A command's life::

    rejected                         refused in the cloud (never queued, still audited)
    pending ─► sent ─► done          the edge applied it
       │         ├───► refused       the edge refused it (reason: not_writable, device_offline, expired …)
       │         └───► timed_out     no reply within the reply timeout (a late reply is still stored,
       │                             flagged ``late_reply``)
       └──────► expired              the gateway stayed offline past ``expires_at``: never sent

Why a queue in the database and not a publish from the API handler: a command to an offline
gateway must wait (the edge's MQTT session is clean, so the broker would drop it), must not fire
late (hence the expiry, checked by the cloud before sending and by the edge on arrival), and
every outcome needs a row anyway. The dispatcher is the single writer of the ``sent`` and later
states; the API only inserts ``pending`` (or ``rejected``) rows.
"""
