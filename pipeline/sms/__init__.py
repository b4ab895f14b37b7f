"""The SMS channel: Twilio's Messaging API (twilio.py), the daily SMS feed (feed.py), the webhook for inbound
texts and delivery statuses (webhooks.py, views.py), the review of replies that may be opt-outs (services.py,
admin.py). Voice would be a sibling package with its own client, feed and webhook: the channel-level pieces it
shares (consent per channel, suppression per channel, contact windows per channel, the shared daily limit in
pipeline/campaigns/limits.py) already take a channel name."""
