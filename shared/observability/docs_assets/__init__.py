"""Files of the /docs page: Swagger UI vendored by scripts/vendor_docs_ui.sh, and docs.js."""
