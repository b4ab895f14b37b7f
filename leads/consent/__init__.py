"""Consent: the links a lead answers (e-mailed to them, never shown to a broker), the lead's answer per
channel with its audit record, and the unsubscribe link every such e-mail carries."""
