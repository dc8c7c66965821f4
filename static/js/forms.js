// Move focus to the error summary when a form comes back with errors, as the GOV.UK pattern does, so a
// screen reader announces it and a keyboard user starts from the list of links to each field.
// Pages work without this file: the summary is already the first thing in the page's main content.
(function () {
  "use strict";
  var summary = document.querySelector("[data-module='error-summary']");
  if (summary) {
    summary.focus();
  }
})();
