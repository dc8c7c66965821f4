// Helpline pages refresh themselves: every data-refresh seconds (on the element that carries it) the page
// reloads, unless someone is typing in a form on it or the tab is hidden. Without JavaScript the page has a
// "Refresh now" link. No inline script: the Content-Security-Policy forbids it.
(function () {
  "use strict";
  var holder = document.querySelector("[data-refresh]");
  if (!holder) { return; }
  var seconds = parseInt(holder.getAttribute("data-refresh"), 10);
  if (!(seconds >= 5)) { return; }
  function busy() {
    var el = document.activeElement;
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }
  window.setInterval(function () {
    if (document.visibilityState === "visible" && !busy()) { window.location.reload(); }
  }, seconds * 1000);
})();
