// Starts Swagger UI on /docs (shared/observability/docs.py) over this origin's /openapi.json.
// A key in the URL fragment (/docs#key=KEY, never sent to a server) authorizes the page at once;
// it is then removed from the address bar and kept in this page's memory only.
"use strict";
(function () {
  let key = "";
  if (location.hash.startsWith("#key=")) {
    key = decodeURIComponent(location.hash.slice(5));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const ui = SwaggerUIBundle({
    url: new URL("openapi.json", location.href).pathname,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    docExpansion: "none",
    defaultModelsExpandDepth: 0,
    filter: true,
    persistAuthorization: false,
    validatorUrl: null,
    requestSnippetsEnabled: true,
    onComplete: () => {
      if (key) {
        ui.preauthorizeApiKey("apiKey", key);
      }
      document.body.dataset.state = "ready";
    },
    onFailure: () => { document.body.dataset.state = "error"; },
  });
  window.ui = ui;
})();
