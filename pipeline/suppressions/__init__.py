"""Imports into the suppression list: CSV files of entries (`manage.py suppression import`) and the national
Do-Not-Call registry (`manage.py dnc_import`)."""
