"""Drop-in integrations of fastgen into other libraries (nflows)."""
