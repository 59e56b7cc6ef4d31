"""National-services simulator: one ASGI app (``hwsim.national.app.create_app``) with fault
injection and a request recorder. See README.md in this folder."""
