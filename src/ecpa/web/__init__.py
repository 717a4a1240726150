"""The web application: server-rendered pages (Jinja2) from the same FastAPI app,
mobile-first, usable without JavaScript, in Chinese and English (issue 7)."""
