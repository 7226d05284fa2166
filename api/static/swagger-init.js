// Starts Swagger UI for the page built by api/docs_ui.py:swagger_ui_response().
// The configuration arrives as JSON in the data-config attribute of #swagger-ui, so the page
// needs no inline script and runs under Content-Security-Policy script-src 'self'.
(function () {
  "use strict";

  var node = document.getElementById("swagger-ui");
  var config = JSON.parse(node.getAttribute("data-config") || "{}");
  var initOAuth = config.initOAuth;
  delete config.initOAuth;
  if (config.oauth2RedirectPath) {
    config.oauth2RedirectUrl = window.location.origin + config.oauth2RedirectPath;
  }
  delete config.oauth2RedirectPath;

  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  if (!("validatorUrl" in config)) {
    config.validatorUrl = null; // never ask validator.swagger.io (offline, strict CSP)
  }

  var ui = SwaggerUIBundle(config);
  if (initOAuth) {
    ui.initOAuth(initOAuth);
  }
  window.ui = ui;
})();
