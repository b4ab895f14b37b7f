"""A person's rights (CCPA-style): everything we hold about a person, exported or erased.

- `person.py`: who the person is (their normalised e-mail and/or phone) and where their records are found;
- `files.py`: the stored upload files (MEDIA_ROOT) that hold their rows, read and blanked;
- `export.py`: `person_export`, every record about them as one document, and a consent proof per lead;
- `erase.py`: `person_erase`, everything removed or irreversibly redacted, at Instantly too;
- `views.py`, `urls.py`: both in the admin, for the *admin* role only, with a confirmation page.
`manage.py privacy export|erase` (pipeline/management/commands/privacy.py) calls the same services.
"""
