// Live library filtering: refresh the results as filters change, without a full reload.
// The form works the same without this script (it just submits).
(function () {
  "use strict";
  var form = document.querySelector("form[data-live-results]");
  if (!form || !window.fetch) { return; }
  var target = document.getElementById(form.getAttribute("data-live-results"));
  var timer = null;
  var latest = 0;
  function refresh() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== "") { params.append(key, value); }  // keep the address short and shareable
    });
    var ticket = ++latest;
    var pageUrl = form.action + "?" + params.toString();
    params.set("partial", "1");
    fetch(form.action + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (ticket !== latest) { return; }  // an older answer arriving late
        target.innerHTML = html;
        history.replaceState(null, "", pageUrl);
      })
      .catch(function () { form.submit(); });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    refresh();
  });
}());
