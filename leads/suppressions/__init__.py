"""The suppression list: contacts (e-mail, e-mail domain, phone, property address) that must not be contacted on
some channels, and the national Do-Not-Call registry. Models here, writes in `services.py`, the SQL that marks
leads in `sql.py`, reads in `selectors.py`."""
