"""Views of the broker portal (`portal`), the public consent page (`consent`) and login (`accounts`)."""
