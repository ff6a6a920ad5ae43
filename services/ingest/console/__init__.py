"""The organiser console at /admin/ on the ingest port (docs/ORGANISERS.md).

Server-rendered pages (Jinja2, strings from locales/*.json, zh-CN first), a session cookie
earned with the admin token, a CSRF token on every change, and every action in the
append-only `console_audit`. It changes campaigns, held ballots and kiosks through the same
code as the admin API, so the same rules hold.
"""
