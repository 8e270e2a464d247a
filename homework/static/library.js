// Live library filtering: refresh the results as filters change, without a full reload.
// The form works the same without this script (it just submits).
// One request per pause in typing, never one per keystroke (a host's rate limiter counts
// them), and a newer request cancels the one still in flight.
(function () {
  "use strict";
  var form = document.querySelector("form[data-live-results]");
  if (!form || !window.fetch) { return; }
  var target = document.getElementById(form.getAttribute("data-live-results"));
  var PAUSE_MS = 350;
  var timer = null;
  var inFlight = null;
  var shown = null;  // the query whose results are on the page
  function query() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== "") { params.append(key, value); }  // keep the address short and shareable
    });
    return params.toString();
  }
  function refresh() {
    timer = null;
    var wanted = query();
    if (wanted === shown && !inFlight) { return; }  // e.g. a letter typed and deleted again
    if (inFlight) { inFlight.abort(); }
    var controller = window.AbortController ? new AbortController() : null;
    inFlight = controller;
    var pageUrl = form.action + (wanted ? "?" + wanted : "");
    var partial = form.action + "?" + (wanted ? wanted + "&" : "") + "partial=1";
    fetch(partial, { credentials: "same-origin", signal: controller && controller.signal })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (inFlight !== controller) { return; }  // an older answer arriving late
        inFlight = null;
        shown = wanted;
        target.innerHTML = html;
        history.replaceState(null, "", pageUrl);
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") { return; }  // replaced by a newer one
        if (inFlight === controller) { inFlight = null; }
        // A refused request (a rate limit, a lost connection) is not retried as a page
        // load: that would be one more request. Submitting the form shows the reason.
        if (error === 429) {
          target.innerHTML = "";
          var note = document.createElement("p");
          note.setAttribute("role", "status");
          note.textContent = form.getAttribute("data-limited");
          target.appendChild(note);
          return;
        }
        form.submit();
      });
  }
  shown = query();
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, PAUSE_MS);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(timer);
    refresh();
  });
}());
