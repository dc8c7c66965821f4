"""One-off messages (one-time codes, callback confirmations): each a row before it is queued, on queues of
their own, ahead of campaign traffic. Campaigns are `app/notices/`."""
