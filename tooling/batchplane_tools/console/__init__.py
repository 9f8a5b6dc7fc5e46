"""The web console: static pages (HTML, CSS, vanilla JS, shipped as package data, no build step) and a
small HTTP server that serves them and proxies `/api/*` to the REST API, signing for a deployed one."""
