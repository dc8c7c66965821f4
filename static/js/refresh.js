// Helpline pages refresh themselves: every data-refresh seconds the element that carries it is fetched again
// from its data-refresh-url (the page's own address, without ?recorded=1 or ?done=..., so a message about the
// last action is not shown again) and replaced. Not while someone is working in it (focus inside), nor while
// the tab is hidden, nor while paused: the pause button (WCAG 2.2.2) is remembered in this browser.
// The fetch says it is a background refresh (X-Background-Refresh: 1), so it does not count as activity and
// an idle session still times out; when it has, the sign-in page it is sent to is opened.
// Without JavaScript the page has a "Refresh now" link. No inline script: the Content-Security-Policy forbids it.
(function () {
  "use strict";
  var holder = document.querySelector("[data-refresh]");
  if (!holder || !window.fetch || !window.DOMParser) { return; }
  var seconds = parseInt(holder.getAttribute("data-refresh"), 10);
  if (!(seconds >= 5)) { return; }
  var url = holder.getAttribute("data-refresh-url") || window.location.pathname;
  var KEY = "portal.refresh.paused";
  var toggle = document.querySelector("[data-refresh-toggle]");
  var status = document.querySelector("[data-refresh-status]");

  function paused() {
    try { return window.localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }
  function remember(value) {
    try {
      if (value) { window.localStorage.setItem(KEY, "1"); } else { window.localStorage.removeItem(KEY); }
    } catch (e) { /* storage refused: the choice lasts for this page only */ }
    state = value;
  }
  var state = paused();

  function show() {
    if (toggle) { toggle.textContent = toggle.getAttribute(state ? "data-resume" : "data-pause"); }
    if (status) { status.textContent = status.getAttribute(state ? "data-paused" : "data-running"); }
  }
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () { remember(!state); show(); });
  }
  if (status) { status.hidden = false; }
  show();

  // A page showing a form's errors is being worked on: it is not replaced under the person fixing them.
  var errors = !!document.querySelector("[data-module='error-summary']");
  function busy() {
    var el = document.activeElement;
    return errors || (!!el && el !== document.body && holder.contains(el));
  }

  var inFlight = false;
  function refresh() {
    inFlight = true;
    window.fetch(url, { headers: { "X-Background-Refresh": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        var path = new URL(response.url, window.location.href).pathname;
        if (response.redirected && path !== url) { window.location.assign(response.url); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html || busy() || state) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-refresh]");
        if (fresh) { holder.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* offline for a moment: try again next time */ })
      .then(function () { inFlight = false; });
  }

  window.setInterval(function () {
    if (!state && !inFlight && document.visibilityState === "visible" && !busy()) { refresh(); }
  }, seconds * 1000);
})();
